#!/usr/bin/env bash
# Create the virtualenv and install the locked dependencies (called by `make env`).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
UV_VERSION=${UV_VERSION:-0.13.8}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "dvtrain needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1 || echo none)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
  bash "$(dirname "$0")/system-deps.sh" python3-venv
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
# --compile-bytecode: imports then never compile sources, even where PYTHONDONTWRITEBYTECODE is set
# (every make-examples shard is a fresh process; compiling numpy, pydantic, ... cost it ~0.6 s)
"$VENV/bin/uv" pip sync -q --compile-bytecode --python "$VENV/bin/python" requirements.lock
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --no-deps -e .
# the package itself too (an editable install, so this only saves each fresh process the compile)
"$VENV/bin/python" -m compileall -q dvtrain
