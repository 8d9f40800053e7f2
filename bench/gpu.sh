#!/usr/bin/env bash
# The GPU benchmark, one prepared script for a machine that has torch but no internet and no diffusers.
#
#   bash bench/gpu.sh prepare        here (with PyPI): fetch the pure-Python wheels it needs into .whl/
#   bash bench/gpu.sh run OUT_DIR    on the GPU machine: build SDXS-size random models, run every `bench`
#                                    (512 and 256 px, eager/graphs/compile, full and light adapters,
#                                    --compare-diffusers), one JSON per run in OUT_DIR, naming card and versions.
#
# With the device tool: run(command="bash bench/gpu.sh run $OUT", carry=[".whl"], timeout_s=480), then copy
# the JSON files to bench/results/<card>/ and commit them. Runs go most important first, and each writes its
# JSON at once, so a run cut short still leaves what it finished.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS="diffusers==0.42.1 importlib_metadata==10.2.0 zipp==4.1.2"

case "${1:-}" in
prepare)
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl $WHEELS && ls .whl
  exit $?
  ;;
run) OUT=${2:?usage: bash bench/gpu.sh run OUT_DIR} ;;
*) echo "usage: bash bench/gpu.sh prepare | run OUT_DIR" >&2; exit 2 ;;
esac

mkdir -p "$OUT"
if ! python3 -c "import diffusers" 2>/dev/null; then
  [ -d .whl ] || { echo "error: no .whl folder: run 'bash bench/gpu.sh prepare' here and carry .whl" >&2; exit 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/sdxs-site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/sdxs-site${PYTHONPATH:+:$PYTHONPATH}
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-/tmp/sdxs-cache}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/card.txt"
python3 -c "import torch, diffusers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'diffusers', diffusers.__version__)" | tee -a "$OUT/card.txt"

M=/tmp/sdxs-rand
python3 bench/gpu_models.py "$M" || exit 1

bench() {  # name, seconds allowed, then bench options
  local name=$1 limit=$2; shift 2
  echo "== $name"
  timeout "$limit" python3 main.py bench --device cuda --dtype float16 --frames 200 --warmup 10 \
    --json "$OUT/$name.json" "$@" || echo "!! $name failed or timed out"
}
B=(--model "$M/base")
bench 512-full-graphs 150 "${B[@]}" --controlnet "$M/full" --size 512 --fast graphs --compare-diffusers
bench 512-full-eager 150 "${B[@]}" --controlnet "$M/full" --size 512 --fast eager --compare-diffusers
bench 512-light-graphs 150 "${B[@]}" --controlnet "$M/light" --size 512 --fast graphs --compare-diffusers
bench 256-full-graphs 150 "${B[@]}" --controlnet "$M/full" --size 256 --fast graphs --compare-diffusers
bench demo-256-graphs 120 --model demo --controlnet demo --size 256 --fast graphs --compare-diffusers
echo "== train-memory"
timeout 150 python3 main.py bench train --model "$M/base" --json "$OUT/train-memory.json" 2>&1 | tail -5
echo "== GPU tests"
SDXS_GPU_TESTS=1 timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_fast.py -k cuda 2>&1 | tail -5
bench 256-full-eager 120 "${B[@]}" --controlnet "$M/full" --size 256 --fast eager
bench 512-nocontrol-graphs 120 "${B[@]}" --size 512 --fast graphs
bench 512-full-compile 240 "${B[@]}" --controlnet "$M/full" --size 512 --fast compile
bench 512-light-compile 240 "${B[@]}" --controlnet "$M/light" --size 512 --fast compile
ls -la "$OUT"
