#!/bin/bash
# Sticky vs uniform on the SAME base (README.md here, attempt 11): the 300-step fine-tune at each
# length L starts from the base trained with the OTHER sampling rule, so that within one seed
#   uniform base -> sticky fine-tune   is compared with   uniform base -> uniform fine-tune
#   sticky base  -> uniform fine-tune  is compared with   sticky base  -> sticky fine-tune
# (the diagonal runs are run_sorting_bar.sh's inf_L and inf_sticky_L). Averaging the two
# directions cancels the base's training luck, which dominates the unpaired sticky - uniform
# differences (seeds differ by ~10 points). Needs OUT_DIR/{inf,inf_sticky}_base from
# run_sorting_bar.sh with the same SEED. Writes OUT_DIR/{inf_then_sticky,inf_sticky_then_uniform}_L.
# Usage: SEED=4 bash experiments/infinity_former/cross_finetune.sh OUT_DIR [BASE_STEPS] [FT_STEPS] [LENGTHS] [DIRECTIONS]
set -u
OUT=${1:?output dir}; BASE=${2:-1500}; FT=${3:-300}; LENGTHS=${4:-"256 512 1024"}
DIRECTIONS=${5:-"inf_then_sticky inf_sticky_then_uniform"}
PY=${PYTHON:-python}; SEED=${SEED:?SEED of the bases}
source "$(dirname "$0")/sorting_flags.sh"   # XLA_FLAGS and COMMON
CFG=configs/sorting/infinity_former.py
for RUN in $DIRECTIONS; do
  case $RUN in
    inf_then_sticky) FROM=inf; STICKY=True;;
    inf_sticky_then_uniform) FROM=inf_sticky; STICKY=False;;
    *) echo "unknown direction $RUN (inf_then_sticky, inf_sticky_then_uniform)"; exit 2;;
  esac
  [ -f $OUT/${FROM}_base/sorting.json ] || { echo "no finished base $OUT/${FROM}_base"; exit 1; }
  for L in $LENGTHS; do
    if [ "$L" = 256 ]; then SCHED="()"; else SCHED="(($BASE,$L),)"; fi
    WD=$OUT/${RUN}_$L
    [ -d $WD ] || { cp -r $OUT/${FROM}_base $WD; rm -f $WD/sorting.* $WD/config.*; }
    start=$(date +%s)
    nice -n 5 $PY -m longctx.main --config=$CFG:cpu,length=256 --workdir=$WD $COMMON \
      --config.model.infinity_former.sticky=$STICKY --config.train.steps=$(( BASE + FT )) \
      "--config.data.seq_len_schedule=$SCHED" "--config.evals.sorting.lengths=($L,)" > $WD.log 2>&1
    echo "$RUN L=$L rc=$? seconds=$(( $(date +%s) - start ))"
    grep "^| [0-9,]* |" $WD/sorting.md 2>/dev/null
  done
done
