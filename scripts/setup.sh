#!/usr/bin/env bash
# Sets up .venv for this checkout: torch pinned (an unpinned torch can pull several GB of CUDA wheels on a
# machine that has a CPU build at hand), then the package in editable mode with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
.venv/bin/python -m pip install -q -e '.[dev]'
