#!/usr/bin/env bash
# Set up rsworkbench in a virtual environment inside the repo (.venv), with Python 3.11.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] >= (3, 11), "rsworkbench needs Python >= 3.11"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q "pip<26.2" wheel "setuptools<81"
# everything the package and its tests need, as pinned in settings.ini (requirements + dev_requirements)
.venv/bin/python -m pip install -q -e ".[dev]"
# the Jupyter kernel papermill and nbdev_test use: this venv's interpreter
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "rsworkbench is set up in .venv ($(.venv/bin/python -c 'import rsworkbench; print(rsworkbench.__version__)'))"
