#!/usr/bin/env bash
# bench/finetune_speed.py on the GPU device machine, in one call of at most 10 minutes.
#
# First, here: bash bench/prepare_device_wheels.sh   (fills the git-ignored bench/cache/device)
# Then, with the device tool:
#   run(command="bash bench/device_finetune.sh", carry=["bench/cache/device"], timeout_s=600)
#   run(command="bash bench/device_finetune.sh compile", carry=["bench/cache/device"], timeout_s=600)
#
# Stages:
#   main     (default) Qwen2.5-0.5B shape, bf16, batch $BATCH pairs, on hh and fixed512 for one
#            epoch of steps: TRL eager and group_by_length, ours eager; ensembles (multihead 4,
#            lora 4, independent 2) on fixed512; score() vs the raw forward; then TRL
#            torch_compile and ours compile=True while the time budget lasts.
#   compile  only the compiled variants (TRL torch_compile, ours compile=True), on
#            ${DATASETS:-hh,fixed512}: for when the main stage ran out of time before them.
# The JSON (and a log) land in $OUT; copy them to bench/results/ here afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."

STAGE=${1:-main}
BATCH=${BATCH:-32}
SHAPE=${SHAPE:-qwen2.5-0.5b}  # SHAPE=tiny: a smoke test of this script on a CPU machine
DATASETS=${DATASETS:-hh,fixed512}
DEV=bench/cache/device
OUT=${OUT:-/tmp/finetune_speed_out}
mkdir -p "$OUT"

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$DEV"/wheels/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD/src"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
python3 - <<'EOF'
import importlib
for m in ("torch", "transformers", "accelerate", "peft", "trl", "datasets", "pyarrow", "fsspec"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as exc:  # noqa: BLE001
        print(m, "FAILED", repr(exc))
EOF

COMMON=(
    --shape "$SHAPE" --batch-size "$BATCH" --steps epoch --warmup-steps 5
    --datasets "$DATASETS" --lengths-file "$DEV/hh_lengths.json" --tokenizer "$DEV/tokenizer"
    --out "$OUT"
)
case "$STAGE" in
main)
    # Configurations started after 400 s are skipped (recorded as such); the JSON is written
    # after each one, so the 570 s timeout still leaves everything finished so far.
    timeout 570 python3 bench/finetune_speed.py "${COMMON[@]}" --trl-variants grouped \
        --ensembles --ensemble-steps 20 --scoring --trl-compile --ours-compile \
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
