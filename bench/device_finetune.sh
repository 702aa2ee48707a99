#!/usr/bin/env bash
# bench/finetune_speed.py on the GPU device machine, in one call of at most 10 minutes.
#
# First, here: bash bench/prepare_device_wheels.sh   (fills the git-ignored bench/cache/device)
# Then, with the device tool:
#   run(command="bash bench/device_finetune.sh", carry=["bench/cache/device"], timeout_s=600)
#   run(command="bash bench/device_finetune.sh compile", carry=["bench/cache/device"], timeout_s=600)
#
# Stages:
#   main     (default) Qwen2.5-0.5B shape, bf16, on hh and fixed512 for one epoch of steps:
#            TRL eager and group_by_length, ours eager and packed (hh); ensembles (multihead 4, lora 4,
#            independent 2) on fixed512; score() vs the raw forward; then TRL torch_compile and
#            ours compile=True while the time budget lasts.
#   compile  only the compiled variants (TRL torch_compile, ours compile=True), on
#            ${DATASETS:-hh,fixed512}: for when the main stage ran out of time before them.
# The JSON (and a log) land in $OUT; copy them to bench/results/ here afterwards.
#
# Batch sizes (pairs; both trainers always get the same one on the same data): fixed512 at
# BATCH=32, the issue's. Saved activations at this shape under bf16 autocast measure 1.46 MiB per
# token (forward of 2 x 256 tokens on the CPU, saved-tensor hooks), plus 7.4 GiB of fp32
# weights, gradients and AdamW state: 32 x 2 x 512 tokens need about 55 GiB, but the widest HH
# batch (954 tokens, 32 x 2 x 960 after padding) about 95 GiB, over an H100's 80. So HH_BATCH is
# 16 on a GPU under 120 GiB (32 on an H200), and the ensembles run at ENSEMBLE_BATCH=8: LoRA K=4
# keeps K passes of activations and independent K=2 two models.
set -uo pipefail
cd "$(dirname "$0")/.."

STAGE=${1:-main}
BATCH=${BATCH:-32}
ENSEMBLE_BATCH=${ENSEMBLE_BATCH:-8}
# A smoke test of this script on a CPU machine: SHAPE=tiny EXTRA_ARGS="--steps 2 --warmup-steps 1"
SHAPE=${SHAPE:-qwen2.5-0.5b}
read -r -a EXTRA <<<"${EXTRA_ARGS:-}"
DATASETS=${DATASETS:-hh,fixed512}
DEV=${DEV:-bench/cache/device}
OUT=${OUT:-/tmp/finetune_speed_out}
mkdir -p "$OUT"

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$DEV"/wheels/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD/src"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
MEM_MIB=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | head -n1)
if [[ -z "${HH_BATCH:-}" ]]; then
    HH_BATCH=16
    if [[ "${MEM_MIB:-0}" =~ ^[0-9]+$ ]] && ((MEM_MIB > 120000)); then HH_BATCH=32; fi
fi
echo "batch sizes: fixed512 $BATCH, hh $HH_BATCH, ensembles $ENSEMBLE_BATCH"
python3 - <<'EOF'
import importlib
for m in ("torch", "transformers", "accelerate", "peft", "trl", "datasets", "pyarrow", "fsspec"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as exc:  # noqa: BLE001
        print(m, "FAILED", repr(exc))
EOF

COMMON=(
    --shape "$SHAPE" --batch-size "$BATCH" --hh-batch-size "$HH_BATCH" --steps epoch --warmup-steps 5
    --datasets "$DATASETS" --lengths-file "$DEV/hh_lengths.json" --tokenizer "$DEV/tokenizer"
    --out "$OUT"
)
COMMON+=("${EXTRA[@]}")
case "$STAGE" in
main)
    # Configurations started after 400 s are skipped (recorded as such); the JSON is written
    # after each one, so the 570 s timeout still leaves everything finished so far.
    timeout 570 python3 bench/finetune_speed.py "${COMMON[@]}" --trl-variants grouped \
        --ours-packing --ensembles --ensemble-batch-size "$ENSEMBLE_BATCH" --ensemble-steps 20 --scoring \
        --trl-compile --ours-compile \
        --time-budget 400 2>&1 | tee "$OUT/finetune_speed_main.log"
    ;;
compile)
    timeout 570 python3 bench/finetune_speed.py "${COMMON[@]}" --skip-eager --trl-compile \
        --ours-compile --tag compile --time-budget 420 2>&1 | tee "$OUT/finetune_speed_compile.log"
    ;;
*)
    echo "unknown stage $STAGE (main or compile)" >&2
    exit 2
    ;;
esac
ls -la "$OUT"
