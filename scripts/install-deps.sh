#!/usr/bin/env bash
# install-deps.sh [--tests]: install what tms needs from Debian's packages, only
# what is missing. With --tests, also what the tests need (numpy for the output
# checks). The CUDA toolkit is optional: with nvcc on PATH (or in /usr/local/cuda)
# the CUDA backend is built too.
set -euo pipefail
need=(cmake make gcc pkg-config git libcjson-dev libstb-dev)
[ "${1:-}" = "--tests" ] && need+=(python3 python3-numpy)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: everything needed is installed"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
