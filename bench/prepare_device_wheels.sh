#!/usr/bin/env bash
# Prepare, on this (CPU) machine, what bench/device_finetune.sh needs on the GPU device
# machine, which reaches no package registry and has no ../shared/data:
#
#   bench/cache/device/wheels/           TRL and the packages it needs that the machine lacks
#   bench/cache/device/tokenizer/        the MiniLM tokenizer files (no model weights)
#   bench/cache/device/hh_lengths.json   per-pair token counts of the HH-RLHF pairs (no text)
#
# bench/cache/ is git-ignored, so the folder travels only when the call carries it:
#   run(command="bash bench/device_finetune.sh", carry=["bench/cache/device"], timeout_s=600)
#
# The device image (/work/.library/device/KINDS.md) has Python 3.12, torch, transformers,
# accelerate, peft, pyarrow, pandas, xxhash, fsspec, huggingface-hub, psutil, jinja2 and pyyaml;
# it lacks trl, datasets, dill and multiprocess. datasets 5.0.0 is picked over 5.2.0 because it
# asks for pyarrow>=21 (5.2.0 wants >=24, and the image's pyarrow version is not recorded);
# trl 1.16.0 + datasets 5.0.0 + pyarrow 21 + transformers 5.17 (the image's) were run together
# here on CPU. WITH_PYARROW=1 also fetches pyarrow (about 53 MiB: it barely fits the 64 MiB
# limit with the working tree, so only if the device's pyarrow turns out too old).
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=bench/cache/device
TRL_VERSION=${TRL_VERSION:-1.16.0}
DATASETS_VERSION=${DATASETS_VERSION:-5.0.0}
DILL_VERSION=${DILL_VERSION:-0.4.1}
MULTIPROCESS_VERSION=${MULTIPROCESS_VERSION:-0.70.19}

rm -rf "$DEST/wheels"
mkdir -p "$DEST/wheels"
wanted=(
    "trl==$TRL_VERSION"
    "datasets==$DATASETS_VERSION"
    "dill==$DILL_VERSION"
    "multiprocess==$MULTIPROCESS_VERSION"
)
if [[ "${WITH_PYARROW:-0}" == 1 ]]; then
    wanted+=("pyarrow==${PYARROW_VERSION:-21.0.0}")
fi
# The device's Python: CPython 3.12 on x86-64 Linux (manylinux); pure wheels for the rest.
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$DEST/wheels" "${wanted[@]}"

echo "Requirements of the fetched wheels (the device must have the rest):"
for whl in "$DEST"/wheels/*.whl; do
    echo "  $(basename "$whl"):"
    { unzip -p "$whl" '*.dist-info/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' |
        sed 's/^Requires-Dist: /    /'; } || echo "    (nothing)"
done

# The tokenizer files and the HH lengths (reads ../shared/data here; only counts travel).
PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" python3 bench/finetune_speed.py --prepare-device "$DEST"

total=$(du -sb "$DEST" | cut -f1)
echo
du -ab "$DEST" | sort -n | awk '{printf "%10.2f MiB  %s\n", $1 / 1048576, $2}' | tail -n 12
printf 'total carried: %.2f MiB (a device call carries at most 64 MiB, working tree included)\n' \
    "$(echo "$total / 1048576" | bc -l)"
if ((total > 60 * 1048576)); then
    echo "warning: too close to the 64 MiB limit once the working tree is added" >&2
fi
