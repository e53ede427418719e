#!/bin/bash
# Sticky vs uniform sampling on the same trained weights (README.md here, attempts 5 and 7): copies
# each per-length infinity-former workdir of one run_sorting_bar.sh seed directory and evaluates the
# copy with the other sampling rule (sticky sampling has no parameters; the copy has no step left to
# train, so only the evaluation runs). Flags as run_sorting_bar.sh's.
# Usage: bash experiments/infinity_former/swap_sampling.sh SEED_DIR SEED OUT_DIR [LENGTHS] [BASE] [FT]
#   e.g. bash experiments/infinity_former/swap_sampling.sh runs/s27/seed3 3 runs/s27/swap "512 1024"
set -u
D=${1:?seed dir}; SEED=${2:?seed}; OUT=${3:?output dir}; LENGTHS=${4:-"512 1024"}
BASE=${5:-1500}; FT=${6:-300}; PY=${PYTHON:-python}
export XLA_FLAGS="--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
COMMON="--config.train.lr=3e-3 --config.train.warmup_steps=50 --config.train.log_every=50
  --config.train.time_limit_minutes=0 --config.data.batch_size=16
  --config.train.seed=$SEED --config.data.seed=$SEED --config.model.block_len=64
  --config.model.infinity_former.num_basis=64 --config.model.infinity_former.num_samples=64
  --config.model.infinity_former.num_bins=32 --config.model.infinity_former.basis_widths=(0.02,0.05)
  --config.model.compressive.compressed_len=64 --config.checkpoint.every_steps=100
  --config.evals.sorting.samples=${SAMPLES:-1024} --config.evals.sorting.batch_size=64"
mkdir -p "$OUT"
for L in $LENGTHS; do
  if [ "$L" = 256 ]; then SCHED="()"; else SCHED="(($BASE,$L),)"; fi
  for pair in "inf True" "inf_sticky False"; do
    set -- $pair; SRC=$D/$1_$L; W=$OUT/$1_${L}_sticky$2
    [ -d "$SRC" ] || { echo "missing $SRC (run run_sorting_bar.sh first)"; exit 2; }
    [ -d $W ] || { cp -r $SRC $W; rm -f $W/sorting.*; }
    nice -n 5 $PY -m longctx.main --config=configs/sorting/infinity_former.py:cpu,length=256 --workdir=$W \
      $COMMON --config.train.steps=$(( BASE + FT )) "--config.data.seq_len_schedule=$SCHED" \
      "--config.evals.sorting.lengths=($L,)" --config.model.infinity_former.sticky=$2 > $W.log 2>&1
    echo "$1 at $L read with sticky=$2: rc=$?"; grep "^| [0-9]" $W/sorting.md
  done
done
