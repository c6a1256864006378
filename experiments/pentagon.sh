#!/usr/bin/env bash
# pentagon.sh: the main job from a fresh clone. Installs what is missing, builds tms,
# and trains the pentagon: 5 features in 2 dimensions at densities 1, 0.2, 0.1 and
# 0.05, 4 seeds each, writing runs/pentagon/ (images in runs/pentagon/images/ and
# runs/pentagon/contact_sheet.png).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
build/tms train experiments/pentagon.json --out runs/pentagon --force "$@"
echo
echo "pentagon: the best seed at density 0.05:"
# columns of instances.csv: 1 instance, 3 density, 11 loss_mean_features, 13 its standard
# error, 15 dims_per_feature, 17 best_of_replicates
awk -F, 'NR > 1 && $3 + 0 < 0.06 && $17 == 1 { printf "  instance %d, loss %s +- %s (mean over features), D* %s -> runs/pentagon/images/instance_%05d.png\n", $1, $11, $13, $15, $1 }' runs/pentagon/instances.csv
echo "contact sheet: runs/pentagon/contact_sheet.png"
