#!/bin/bash
# The issue-8 bar at CPU scale: the same-size infini, xl and bswa byte models trained on the local
# Vim-help corpus (python scripts/make_text_corpus.py), compared in bits per byte on held-out files.
set -e
cd "$(dirname "$0")/../.."
PY=${PY:-python}
for arch in infini xl bswa; do
  nice -n 15 $PY -m longctx.main --config=configs/pg19/$arch.py:cpu --workdir=runs/pg19_bar/$arch \
    > runs/pg19_bar_$arch.log 2>&1
done
