#!/usr/bin/env bash
# Sets up .venv for this checkout.
#   bash scripts/setup.sh          the package (what `swarm demo` and a real swarm need)
#   bash scripts/setup.sh --dev    also the test tools and the pinned agent CLIs the end-to-end tests drive
#   bash scripts/setup.sh --which-torch   print the torch build this machine gets, and install nothing
# torch is pinned: an unpinned torch can pull several GB of CUDA wheels on a machine that has a CPU build at
# hand (TORCH_VERSION overrides the pin; the package itself asks only for torch>=2.11).
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
case "${1:-}" in
    "") ;;
    --dev) dev=1 ;;
    --which-torch) dev=which ;;
    *) echo "usage: bash scripts/setup.sh [--dev | --which-torch]" >&2; exit 2 ;;
esac

# Which torch build the NVIDIA driver can run. PyPI's torch is a CUDA 13 build, which needs a driver >= 580;
# with an older one it finds no GPU and a GPU run would train on the CPU. So the driver's version (from
# nvidia-smi) picks the newest CUDA build it supports; no nvidia-smi: PyPI's, as before (a CPU machine).
# TORCH_INDEX_URL overrides the choice.
torch_index() {
    if [ -n "${TORCH_INDEX_URL:-}" ]; then echo "$TORCH_INDEX_URL"; return; fi
    command -v nvidia-smi >/dev/null || return 0
    local driver
    driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1 | cut -d. -f1)
    case "$driver" in
        ''|*[!0-9]*) echo "setup: nvidia-smi gives no driver version; installing PyPI's torch (CUDA 13)" >&2 ;;
        *) if [ "$driver" -ge 580 ]; then return 0
           elif [ "$driver" -ge 570 ]; then echo "https://download.pytorch.org/whl/cu128"
           elif [ "$driver" -ge 560 ]; then echo "https://download.pytorch.org/whl/cu126"
           else
               echo "setup: NVIDIA driver $driver is too old for torch's CUDA builds (need >= 560; 580 for" \
                    "CUDA 13): upgrade the driver, or set TORCH_INDEX_URL" >&2
               return 1
           fi ;;
    esac
}
index=$(torch_index)
if [ "$dev" = which ]; then
    echo "torch==${TORCH_VERSION:-2.13.0} from ${index:-PyPI}"
    exit 0
fi

# Trainers and agents run in bubblewrap sandboxes: `swarm spawn` refuses to start a swarm without one
# (unless --unsealed) and `swarm demo` runs unsealed. Installed here where we can (root with apt).
if ! command -v bwrap >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null
    else
        echo "setup: bubblewrap (bwrap) is missing; install it with: sudo apt-get install -y bubblewrap" >&2
    fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q ${index:+--index-url "$index"} "torch==${TORCH_VERSION:-2.13.0}"
if [ "$dev" = 1 ]; then
    # ray and skypilot: the cluster tests (a local Ray cluster, the SkyPilot YAML read offline); ~75 s, ~600 MB
    .venv/bin/python -m pip install -q -e '.[dev,ray,sky]'
else
    .venv/bin/python -m pip install -q -e .
    exit 0
fi

# The agent CLIs that the end-to-end tests drive against a local fake model server, pinned, under a
# project-local prefix (.node/node_modules/.bin) so that nothing global changes. Skipped when present.
CLAUDE_CODE_VERSION=2.1.330
CODEX_VERSION=0.169.0
bin=.node/node_modules/.bin
if ! { "$bin/claude" --version 2>/dev/null | grep -q "^$CLAUDE_CODE_VERSION " &&
       "$bin/codex" --version 2>/dev/null | grep -q " $CODEX_VERSION$"; }; then
    if ! command -v npm >/dev/null; then
        echo "setup: npm not found: the Claude Code and Codex end-to-end tests need it (install Node.js)" >&2
        exit 1
    fi
    npm install --prefix .node --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION"
    # Claude Code puts its native binary in place with a postinstall script; npm versions that hold
    # back install scripts leave a stub instead, so run it when the binary does not answer.
    "$bin/claude" --version >/dev/null 2>&1 || node .node/node_modules/@anthropic-ai/claude-code/install.cjs
fi
