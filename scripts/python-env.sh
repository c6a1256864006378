#!/usr/bin/env bash
# python-env.sh: make the project's virtualenv, .venv/ in the repository root, and print
# its python on the last line of stdout (everything else goes to stderr).
#
#   py=$(bash scripts/python-env.sh | tail -n 1)   # then: "$py" -c 'import tmslab'
#
# Creates .venv/ with Debian's Python 3.11 (`python3 -m venv`; installs the python3-venv
# package when the venv module is missing, root or sudo), pip-installs the exact versions
# pinned in python/requirements.txt and then tmslab itself, editable (`pip install -e
# python`, so the checkout's python/tmslab is what `import tmslab` runs). Idempotent: when
# .venv/ already holds what the current requirements.txt and pyproject.toml describe (a
# stamp of their checksums), it only prints the path. Concurrent callers wait for each
# other (flock on .venv.lock). Environment: TMS_VENV (default REPO/.venv), PYTHON3 (the
# base interpreter, default /usr/bin/python3, else python3 on PATH).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${TMS_VENV:-$repo/.venv}
req=$repo/python/requirements.txt
base=${PYTHON3:-}
if [ -z "$base" ]; then
    if [ -x /usr/bin/python3 ]; then base=/usr/bin/python3; else base=$(command -v python3 || true); fi
fi
[ -n "$base" ] || { echo "python-env: no python3 found (apt-get install python3)" >&2; exit 1; }

stamp_of() { cat "$req" "$repo/python/pyproject.toml" | sha256sum | cut -d' ' -f1; }
ready() {
    [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.tmslab-stamp" 2>/dev/null)" = "$(stamp_of)" ] &&
        "$venv/bin/python" -c 'import tmslab' 2>/dev/null
}

if ! ready; then
    mkdir -p "$(dirname "$venv")"
    exec 9>"$venv.lock"
    flock 9 # another caller may be filling it: wait, then look again
    if ! ready; then
        if ! "$base" -c 'import venv, ensurepip' 2>/dev/null; then
            echo "python-env: installing python3-venv" >&2
            sudo=""
            [ "$(id -u)" -ne 0 ] && sudo="sudo"
            export DEBIAN_FRONTEND=noninteractive
            $sudo apt-get update -qq >&2
            $sudo apt-get install -y -qq --no-install-recommends python3-venv >&2
        fi
        if [ ! -x "$venv/bin/python" ]; then
            echo "python-env: creating $venv with $base ($("$base" --version 2>&1))" >&2
            "$base" -m venv "$venv" >&2
        fi
        echo "python-env: installing python/requirements.txt and tmslab (pip)" >&2
        pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input -q)
        "${pip[@]}" install -r "$req" >&2
        # no build isolation: the pinned setuptools is already in the venv (no download)
        "${pip[@]}" install --no-deps --no-build-isolation -e "$repo/python" >&2
        stamp_of >"$venv/.tmslab-stamp"
        "$venv/bin/python" -c 'import tmslab' >&2
    fi
fi
echo "$venv/bin/python"
