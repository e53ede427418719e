#!/bin/bash
# Sticky memories where the paper measures them: language modelling (README.md here, attempt 14).
# One uniform-sampling base of configs/lm/infinity_former.py:cpu (2 layers, d 128, block = STM 128,
# bytes, 128 basis functions, tau 0.5, on the local Vim-help corpus: python scripts/make_text_corpus.py)
# trained BASE steps, then resumed for FT more steps under each sampling rule (the same batches from
# the same checkpoint): u = uniform, q = sticky with histogram quantiles (longctx's default rule),
# c = sticky with the official random Categorical draw of bin left edges (the GPT-2 code's rule).
# Each is scored in bits per byte on the 10 held-out files (evals.lm, first 32K bytes of each).
# READ=1 also scores the uniform fine-tune's weights read with q and with c (no training).
# Usage: SEED=0 bash experiments/infinity_former/run_lm_sticky.sh OUT_DIR [BASE] [FT] [ARMS]
set -u
OUT=${1:?output dir}; BASE=${2:-1200}; FT=${3:-300}; ARMS=${4:-"u q c"}
PY=${PYTHON:-python}; SEED=${SEED:-0}; READ=${READ:-1}
CFG=configs/lm/infinity_former.py:cpu,sticky=False
COMMON="--config.train.seed=$SEED --config.data.seed=$SEED --config.train.time_limit_minutes=0
  --config.train.log_every=100 --config.checkpoint.every_steps=$BASE"
rule() {  # the sampling switches of an arm
  case $1 in
    u) echo "--config.model.infinity_former.sticky=False";;
    q) echo "--config.model.infinity_former.sticky=True --config.model.infinity_former.sticky_draw=quantile";;
    c) echo "--config.model.infinity_former.sticky=True --config.model.infinity_former.sticky_draw=categorical";;
    *) echo "unknown arm $1 (u, q, c)" >&2; exit 2;;
  esac
}
mkdir -p "$OUT"
if [ ! -f $OUT/base/lm.json ]; then
  start=$(date +%s)
  nice -n 5 $PY -m longctx.main --config=$CFG --workdir=$OUT/base $COMMON $(rule u) \
    --config.train.steps=$BASE > $OUT/base.log 2>&1 || { echo "base failed (see $OUT/base.log)"; exit 1; }
  echo "base: $(( $(date +%s) - start )) s"
fi
for ARM in $ARMS; do
  W=$OUT/ft_$ARM
  [ -d $W ] || { cp -r $OUT/base $W; rm -f $W/lm.json; }
  start=$(date +%s)
  nice -n 5 $PY -m longctx.main --config=$CFG --workdir=$W $COMMON $(rule $ARM) \
    --config.train.steps=$(( BASE + FT )) > $W.log 2>&1
  echo "fine-tune $ARM rc=$? seconds=$(( $(date +%s) - start ))"
done
if [ "$READ" = 1 ] && [ -f $OUT/ft_u/lm.json ]; then
  for ARM in q c; do
    W=$OUT/ft_u_read_$ARM
    [ -d $W ] || { cp -r $OUT/ft_u $W; rm -f $W/lm.json; }
    nice -n 5 $PY -m longctx.main --config=$CFG --workdir=$W $COMMON $(rule $ARM) \
      --config.train.steps=$(( BASE + FT )) > $W.log 2>&1
    echo "uniform fine-tune read with $ARM rc=$?"
  done
fi
