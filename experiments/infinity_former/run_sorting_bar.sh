#!/bin/bash
# The sorting bar at CPU scale (see README.md here): infinity-former (uniform, sticky) vs
# Transformer-XL with the same short-term memory (64 tokens). Budget version: one model per
# architecture trained at TRAIN_LEN tokens, evaluated at EVAL_LENS (the paper trains one model per
# length; that costs 3x and did not fit the shared 2-core machine).
# Usage: bash experiments/infinity_former/run_sorting_bar.sh OUT_DIR [STEPS] [TRAIN_LEN] [EVAL_LENS]
set -u
OUT=${1:?output dir}; STEPS=${2:-150}; TRAIN_LEN=${3:-512}; EVAL_LENS=${4:-"(256,512,1024)"}
PY=${PYTHON:-python}
mkdir -p "$OUT"
# Compile-time flags (as tests/conftest.py): on a small shared CPU, compiling dominates short runs.
export XLA_FLAGS="--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
COMMON="--config.train.steps=$STEPS --config.train.log_every=25 --config.train.time_limit_minutes=0
  --config.model.d_model=32 --config.model.num_heads=2 --config.model.mlp_dim=64
  --config.model.block_len=64 --config.model.remat_policy=none
  --config.model.infinity_former.num_basis=64 --config.model.infinity_former.num_samples=64
  --config.model.infinity_former.num_bins=32 --config.model.infinity_former.basis_widths=(0.02,0.05)
  --config.evals.sorting.samples=64 --config.evals.sorting.batch_size=32 --config.checkpoint.every_steps=1000 --config.evals.sorting.lengths=$EVAL_LENS"
for LEN in $TRAIN_LEN; do
  for RUN in xl inf inf_sticky; do
    case $RUN in
      xl) CFG=configs/sorting/xl.py; EXTRA="";;
      inf) CFG=configs/sorting/infinity_former.py; EXTRA="";;
      inf_sticky) CFG=configs/sorting/infinity_former.py; EXTRA="--config.model.infinity_former.sticky=True";;
    esac
    WD=$OUT/${RUN}_$LEN
    start=$(date +%s)
    nice -n 15 $PY -m longctx.main --config=$CFG:cpu,length=$LEN --workdir=$WD $COMMON $EXTRA \
      > $WD.log 2>&1
    echo "$RUN train_len=$LEN rc=$? seconds=$(( $(date +%s) - start ))"
    cat $WD/sorting.md 2>/dev/null
  done
done
