#!/bin/bash
# Four S-NIAH runs of run_niah_1200.sh side by side on one GPU (stop 36: one NVIDIA H200, the
# ~6 minutes of device time left after the bench), all with forgetting towards W_0
# (model.titans.forget_to=initial): the seeds attempt 11 lacked. Training stops at
# train.time_limit_minutes (then saves and evaluates as usual), so a run slower than planned still
# reports; its log says at which step.
#   OUT=runs/gpu bash experiments/titans/run_niah_gpu.sh
OUT=${OUT:-runs/gpu}
export RUNS=/tmp/niah_runs PYTHON=python3
source experiments/bench/gpu/common.sh  # the image lacks ml_collections, tensorboardX, orbax
export TIME_LIMIT_MIN=${TIME_LIMIT_MIN:-3.2}
R="--config.model.titans.forget_to=initial"
one() {  # one VARIANT SEED NAME [flags]: a run, its log tail and niah.json into $OUT
  local v=$1 s=$2 name=$3; shift 3
  bash experiments/titans/run_niah_1200.sh "$v" "$s" "$name" $R "$@" > "/tmp/$name.log" 2>&1
  echo "rc=$?" >> "/tmp/$name.log"
  tail -n 3 "$RUNS/${name}_seed$s/metrics.jsonl" >> "/tmp/$name.log" 2>/dev/null
  grep -v "^I[0-9]" "/tmp/$name.log" | tail -c 6000 > "$OUT/${name}_seed$s.log"
  cp "$RUNS/${name}_seed$s/niah.json" "$OUT/${name}_seed${s}_niah.json" 2>/dev/null
}
one lmm 1 lmm_w0 &
one mac 1 mac_w0 &
one lmm:linear 0 lmm_linear_w0 &
one mag 2 mag_mix_w0 --config.model.titans.output_gate=mix &
wait
date -u
