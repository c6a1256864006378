#!/usr/bin/env bash
# test_python.sh TMS SCRATCH: the tmslab package's pytest suite (python/tests), run by the
# project's virtualenv (.venv/, made by scripts/python-env.sh; tests/run.sh makes it before
# the suite, so here it is only checked) against this TMS, in SCRATCH.
set -euo pipefail
tms=$1; scratch=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
py=$(bash "$repo/scripts/python-env.sh" | tail -n 1)
rm -rf "$scratch"; mkdir -p "$scratch"
cd "$repo/python"
TMS_BIN=$tms exec "$py" -m pytest -q -p no:cacheprovider --basetemp="$scratch/pytest" tests
