#!/usr/bin/env bash
# Sets up .venv with everything tracetutor needs to train, export and test.
# torch is pinned and installed first: an unpinned torch would pull a multi-GB CUDA build onto a
# CPU machine. Set TRACETUTOR_TORCH to choose another build (e.g. on a GPU machine).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
TORCH=${TRACETUTOR_TORCH:-torch==2.13.0}
python -c "import torch" 2>/dev/null || python -m pip install -q "$TORCH"
python -m pip install -q -e ".[train,export,runtime,dev]"
echo "tracetutor is set up in .venv (torch $(python -c 'import torch; print(torch.__version__)'))"
