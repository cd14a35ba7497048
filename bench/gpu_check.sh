#!/usr/bin/env bash
# One-command GPU check (make gpu-check): training throughput and bf16 MFU of the full model and
# MedSegDiff-v2 at the paper's 256² widths, and the 5-sample 20-step ensemble's seconds per slice
# at 64 slices per batch. Writes bench/out/gpu_check.json (+ train_gpu.json, sampling_gpu.json).
# Bounded at 8 minutes; extra arguments go to bench/gpu_check.py (e.g. --dry-run on a CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout "${GPU_CHECK_TIMEOUT:-480}" "$PY" bench/gpu_check.py "$@"
