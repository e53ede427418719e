#!/bin/bash
# Sticky vs uniform sampling on the same trained weights (README.md here, attempts 5 and 7): copies
# each per-length infinity-former workdir of one run_sorting_bar.sh seed directory and evaluates the
# copy with the other sampling rule (sticky sampling has no parameters; the copy has no step left to
# train, so only the evaluation runs). Flags as run_sorting_bar.sh's.
# Usage: bash experiments/infinity_former/swap_sampling.sh SEED_DIR SEED OUT_DIR [LENGTHS] [BASE] [FT]
#   e.g. bash experiments/infinity_former/swap_sampling.sh runs/s27/seed3 3 runs/s27/swap "512 1024"
# PAIRS="RUN STICKY ..." picks the runs and the rule each is read with (default "inf True
# inf_sticky False"); EXTRA adds flags, e.g. for the equal-share models of attempts 9-10:
#   PAIRS="inf_equal True" EXTRA=--config.model.infinity_former.tau_schedule=equal bash ... runs/s37/seed2 2 runs/s37/swap2 2048
set -u
D=${1:?seed dir}; SEED=${2:?seed}; OUT=${3:?output dir}; LENGTHS=${4:-"512 1024"}
BASE=${5:-1500}; FT=${6:-300}; PY=${PYTHON:-python}
PAIRS=${PAIRS:-"inf True inf_sticky False"}; EXTRA=${EXTRA:-}
source "$(dirname "$0")/sorting_flags.sh"   # XLA_FLAGS and COMMON
mkdir -p "$OUT"
for L in $LENGTHS; do
  if [ "$L" = 256 ]; then SCHED="()"; else SCHED="(($BASE,$L),)"; fi
  set -- $PAIRS
  while [ $# -ge 2 ]; do
    RUN=$1; STICKY=$2; shift 2; SRC=$D/${RUN}_$L; W=$OUT/${RUN}_${L}_sticky$STICKY
    [ -d "$SRC" ] || { echo "missing $SRC (run run_sorting_bar.sh first)"; exit 2; }
    [ -d $W ] || { cp -r $SRC $W; rm -f $W/sorting.*; }
    nice -n 5 $PY -m longctx.main --config=configs/sorting/infinity_former.py:cpu,length=256 --workdir=$W \
      $COMMON --config.train.steps=$(( BASE + FT )) "--config.data.seq_len_schedule=$SCHED" \
      "--config.evals.sorting.lengths=($L,)" --config.model.infinity_former.sticky=$STICKY $EXTRA > $W.log 2>&1
    echo "$RUN at $L read with sticky=$STICKY: rc=$?"; grep "^| [0-9]" $W/sorting.md
  done
done
