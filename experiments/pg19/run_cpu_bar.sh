#!/bin/bash
# The issue-8 bar at CPU scale: the same-size infini, fam, xl and bswa byte models (configs/pg19/*:cpu,
# 2 layers, d_model 128, blocks of 128) trained for the SAME number of steps on the local Vim-help
# corpus (python scripts/make_text_corpus.py), compared in bits per byte on the 10 held-out files.
# Shortened from the preset (400 steps x batch 8) to fit a shared 2-core machine: STEPS x batch 4.
set -e
cd "$(dirname "$0")/../.."
PY=${PY:-python}
STEPS=${STEPS:-120}
mkdir -p runs/pg19_bar2
for arch in ${ARCHS:-infini xl bswa fam}; do
  nice -n 15 $PY -m longctx.main --config=configs/pg19/$arch.py:cpu --workdir=runs/pg19_bar2/$arch \
    --config.train.steps=$STEPS --config.train.warmup_steps=20 --config.data.batch_size=4 \
    --config.train.time_limit_minutes=0 --config.evals.lm.max_tokens=16384 \
    > runs/pg19_bar2/$arch.log 2>&1
done
