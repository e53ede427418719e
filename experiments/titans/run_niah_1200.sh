#!/usr/bin/env bash
# S-NIAH at the budget of attempts 7-9 (experiments/titans/README.md): the niah `cpu` preset at
# 1,200 steps with the random filler phase, seed S for the model and the data.
#   bash experiments/titans/run_niah_1200.sh VARIANT SEED NAME [--config.x=y ...]
# e.g. `... mag 0 mag_mix --config.model.titans.output_gate=mix`; VARIANT is mac | mag | mal | lmm
# (the linear ablation: NAME lmm_linear and VARIANT 'lmm:linear'). Workdir: $RUNS/NAME_seedS
# (RUNS defaults to runs/niah_1200; PYTHON, the interpreter, to python; TIME_LIMIT_MIN, a wall-time
# limit on training after which the run saves and evaluates, to 0 = none).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
V=$1; S=$2; NAME=$3; shift 3
ARG=cpu
if [ "$V" = "lmm:linear" ]; then V=lmm; ARG=cpu,linear=True; fi
"${PYTHON:-python}" -m longctx.main --config=configs/niah/titans_$V.py:$ARG \
  --workdir="${RUNS:-runs/niah_1200}/${NAME}_seed$S" \
  --config.train.steps=1200 --config.data.random_filler_phase=True \
  --config.train.seed="$S" --config.data.seed="$S" --config.train.time_limit_minutes="${TIME_LIMIT_MIN:-0}" "$@"
