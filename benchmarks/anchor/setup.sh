#!/usr/bin/env bash
# Set up the peer ("anchor") venv the loader and episode benchmarks compare against:
# medimeta 0.0.6 and torchcross 0.0.6 as released, with the torch/torchvision pair they need.
# torchvision does not import with the project's own torch, so the peer lives in its own
# interpreter; the benchmarks run it as a subprocess (--anchor-python VENV/bin/python).
#
#   bash benchmarks/anchor/setup.sh [VENV]        # default /work/anchor-venv
#
# The venv is never committed. Re-running is cheap (pip finds everything installed).
set -euo pipefail
VENV="${1:-/work/anchor-venv}"
PYTHON="${PYTHON:-python3}"
TORCH="${ANCHOR_TORCH:-torch==2.14.1}"
TORCHVISION="${ANCHOR_TORCHVISION:-torchvision==0.29.1}"

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install -q --upgrade pip
# torch first, pinned, so nothing below can pull another one
"$PIP" install -q "$TORCH" "$TORCHVISION"
# the two peers without their dependency resolution, then their real dependencies with the
# installed torch kept (a constraint file pins it)
"$PIP" install -q --no-deps medimeta==0.0.6 torchcross==0.0.6
PINS="$(mktemp)"
"$VENV/bin/python" - "$PINS" <<'PY'
import sys
from importlib.metadata import version

with open(sys.argv[1], "w") as f:
    f.write(f"torch=={version('torch')}\ntorchvision=={version('torchvision')}\n")
PY
"$PIP" install -q -c "$PINS" h5py numpy pillow pyyaml \
    "lightning>=2.0.2" "omegaconf>=2.3.0" "torchmetrics>=1.2.0" "torchopt>=0.7.1"
rm -f "$PINS"
"$VENV/bin/python" - <<'PY'
import medimeta, torch, torchcross, torchvision  # noqa: F401
from importlib.metadata import version

print("anchor venv ready:", {p: version(p) for p in ("torch", "torchvision", "medimeta", "torchcross")})
PY
