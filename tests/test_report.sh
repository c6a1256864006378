#!/usr/bin/env bash
# test_report.sh TMS SCRATCH: `python -m tmslab report` on the phase-diagram sweep
# (experiments/specs/phase_2_1.json, 363 instances, 200 steps; at 50 steps with two learning
# rates, for the budget's tiers; its shard 0 of 2; a 6 -> 3 untied model without bias),
# checked against tmslab.load and in headless chromium by tests/test_report.py (selenium,
# the project's virtualenv).
# Exits 77 (skipped) only when Debian's chromium or chromium-driver is not installed
# (scripts/install-deps.sh --tests installs both).
set -euo pipefail
tms=$1 scratch=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
for b in /usr/bin/chromium /usr/bin/chromedriver; do
    [ -x "$b" ] || { echo "test_report: $b is missing (apt-get install chromium chromium-driver): skipped"; exit 77; }
done
py=$(bash "$repo/scripts/python-env.sh" | tail -n 1)
rm -rf "$scratch"; mkdir -p "$scratch"
spec=$repo/experiments/specs/phase_2_1.json
"$tms" train "$spec" --out "$scratch/phase" --set train.steps=200 --quiet
"$tms" train "$spec" --out "$scratch/phase_lr" --set train.steps=50 --set 'optimizer.lr=[0.001,0.01]' --quiet
cat >"$scratch/untied.json" <<'JSON'
{"name": "untied_6_3", "model": {"n_features": 6, "n_hidden": 3, "decoder": "untied", "bias": false},
 "data": {"density": [1, 0.1], "importance_decay": 0.9}, "train": {"steps": 100, "seeds": 2},
 "output": {"images": false, "contact_sheet": false}}
JSON
"$tms" train "$scratch/untied.json" --out "$scratch/untied" --quiet
"$tms" train "$spec" --out "$scratch/shard0" --shard 0/2 --set train.steps=50 --quiet
cd "$scratch"
"$py" "$repo/tests/test_report.py" "$scratch/phase" "$scratch/phase_lr" "$scratch/untied" "$scratch/shard0" "$scratch"
