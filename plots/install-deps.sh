#!/usr/bin/env bash
# install-deps.sh: make sure the Python the plot scripts run under has matplotlib, numpy
# and pandas. The project's choice is Debian's packages (python3-matplotlib,
# python3-numpy, python3-pandas: on Debian 12 the versions requirements.txt pins), like
# the rest of scripts/install-deps.sh; installs only what is missing. Prints the Python
# to use on its last line.
#   PYTHON=/path/to/python3 overrides the interpreter (e.g. a virtualenv you filled with
#   `python3 -m pip install -r plots/requirements.txt`); nothing is installed for it.
set -euo pipefail
if [ -n "${PYTHON:-}" ]; then
    "$PYTHON" -c 'import matplotlib, numpy, pandas' 2>/dev/null || {
        echo "plots: $PYTHON lacks matplotlib, numpy or pandas: python3 -m pip install -r plots/requirements.txt" >&2
        exit 1
    }
    echo "$PYTHON"
    exit 0
fi
py=/usr/bin/python3 # Debian's packages install for the system Python, not for a pyenv or venv one
if ! "$py" -c 'import matplotlib, numpy, pandas' 2>/dev/null; then
    need=(python3 python3-matplotlib python3-numpy python3-pandas)
    missing=()
    for p in "${need[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    echo "plots: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    "$py" -c 'import matplotlib, numpy, pandas' || { echo "plots: the install did not provide them" >&2; exit 1; }
fi
echo "$py"
