#!/bin/bash
# The sorting bar at CPU scale (README.md here, attempt 4): Transformer-XL, the Compressive
# Transformer and infinity-former (uniform, sticky), all with the same short-term memory (one block
# of 64 tokens), ONE MODEL PER LENGTH as the paper: each architecture is trained BASE_STEPS steps at
# 256 tokens, then that checkpoint is resumed for FT_STEPS more steps at each length L (a length
# curriculum, data.seq_len_schedule; the 256 model gets its extra steps at 256), so every model has
# seen the same number of steps. Every model is evaluated on SAMPLES documents at 256 / 512 / 1K / 2K.
# Usage: bash experiments/infinity_former/run_sorting_bar.sh OUT_DIR [BASE_STEPS] [FT_STEPS] [LENGTHS]
# (defaults 1500 300 "256 512 1024": ~1 h 50 min on 2 quiet CPU cores; add 2048 for ~25 min more
# per run (attempt 5); SEED=1 for another seed; DIAG=1 evaluates each model at its own length only
# (the paper's table), which saves most of the evaluation time; a finished base is not retrained)
# Sticky vs uniform on the SAME base (attempt 11): RUNS="inf_then_sticky inf_sticky_then_uniform"
# fine-tune the inf / inf_sticky base (which must exist) with the other sampling rule, so within one
# seed each rule's fine-tune is compared with the other's on one base, the same batches and documents.
# RUNS="inf_then_sticky_cat" (attempt 13): the uniform base fine-tuned with the official random draw.
set -u
OUT=${1:?output dir}; BASE=${2:-1500}; FT=${3:-300}; LENGTHS=${4:-"256 512 1024"}
PY=${PYTHON:-python}; SEED=${SEED:-0}; SAMPLES=${SAMPLES:-1024}; RUNS=${RUNS:-"xl cmp inf inf_sticky"}
DIAG=${DIAG:-0}
mkdir -p "$OUT"
source "$(dirname "$0")/sorting_flags.sh"   # XLA_FLAGS and COMMON
eval_lengths() { if [ "$DIAG" = 1 ]; then echo "($1,)"; else echo "(256,512,1024,2048)"; fi; }
for RUN in $RUNS; do
  FROM=$RUN   # whose base the fine-tunes start from
  case $RUN in
    xl) CFG=configs/sorting/xl.py; EXTRA="";;
    cmp) CFG=configs/sorting/compressive.py; EXTRA="";;
    inf) CFG=configs/sorting/infinity_former.py; EXTRA="";;
    inf_sticky) CFG=configs/sorting/infinity_former.py; EXTRA="--config.model.infinity_former.sticky=True";;
    # tau_n = n / (n + 1), every block an equal share of the memory (not in the paper; attempt 9)
    inf_equal) CFG=configs/sorting/infinity_former.py; EXTRA="--config.model.infinity_former.tau_schedule=equal";;
    inf_sticky_equal) CFG=configs/sorting/infinity_former.py; EXTRA="--config.model.infinity_former.tau_schedule=equal --config.model.infinity_former.sticky=True";;
    inf_then_sticky) CFG=configs/sorting/infinity_former.py; FROM=inf; EXTRA="--config.model.infinity_former.sticky=True";;
    inf_sticky_then_uniform) CFG=configs/sorting/infinity_former.py; FROM=inf_sticky; EXTRA="--config.model.infinity_former.sticky=False";;
    # the official random draw of sticky points (attempt 13); the resume restarts the carried memory
    inf_then_sticky_cat) CFG=configs/sorting/infinity_former.py; FROM=inf; EXTRA="--config.model.infinity_former.sticky=True --config.model.infinity_former.sticky_draw=categorical";;
    *) echo "unknown run $RUN (xl, cmp, inf, inf_sticky, inf_equal, inf_sticky_equal, inf_then_sticky, inf_sticky_then_uniform, inf_then_sticky_cat)"; exit 2;;
  esac
  if [ $FROM != $RUN ] && [ ! -f $OUT/${FROM}_base/sorting.json ]; then
    echo "$RUN needs the finished base $OUT/${FROM}_base (run RUNS=$FROM first)"; exit 1
  fi
  start=$(date +%s)
  if [ ! -f $OUT/${RUN}_base/sorting.json ] && [ $FROM = $RUN ]; then
    nice -n 5 $PY -m longctx.main --config=$CFG:cpu,length=256 --workdir=$OUT/${RUN}_base $COMMON $EXTRA \
      --config.train.steps=$BASE "--config.evals.sorting.lengths=$(eval_lengths 256)" \
      > $OUT/${RUN}_base.log 2>&1 || { echo "$RUN base failed"; exit 1; }
    echo "$RUN base: $(( $(date +%s) - start )) s"
  fi
  for L in $LENGTHS; do
    if [ "$L" = 256 ]; then SCHED="()"; else SCHED="(($BASE,$L),)"; fi
    WD=$OUT/${RUN}_$L
    [ -d $WD ] || { cp -r $OUT/${FROM}_base $WD; rm -f $WD/sorting.*; }
    start=$(date +%s)
    nice -n 5 $PY -m longctx.main --config=$CFG:cpu,length=256 --workdir=$WD $COMMON $EXTRA \
      --config.train.steps=$(( BASE + FT )) "--config.data.seq_len_schedule=$SCHED" \
      "--config.evals.sorting.lengths=$(eval_lengths $L)" > $WD.log 2>&1
    echo "$RUN L=$L rc=$? seconds=$(( $(date +%s) - start ))"
    cat $WD/sorting.md 2>/dev/null
  done
done
