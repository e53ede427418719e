# Sourced by the GPU scripts (run_h200.sh, run_s37.sh, run_s37b.sh, experiments/titans/run_niah_gpu.sh)
# with OUT set: creates $OUT, starts $OUT/log.txt ($LOG) with the machine and versions, makes the
# device image able to run longctx, and defines `stage` (one bounded bench run).
# The H200 image of stops 36-37 has jax 0.11.2 and flax 0.12.10 but lacks ml_collections,
# tensorboardX and orbax-checkpoint; put their py3 wheels in .whl/ (git-ignored; `pip download
# --no-deps --python-version 3.12 --only-binary=:all: -d .whl ml_collections==1.1.0
# tensorboardX==2.6.5 orbax-checkpoint==0.12.8 flax==0.12.8`) and carry it. Installs nothing when
# .whl/ is empty.
mkdir -p "${OUT:?OUT must be set before sourcing common.sh}"
LOG=$OUT/log.txt
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/ml_collections-*.whl .whl/tensorboardx-*.whl .whl/orbax_checkpoint-*.whl \
      && export PYTHONPATH=/tmp/site
    # The image's flax, unless it predates the NNX API this code is written against (0.12).
    if ! python3 -c "import flax,sys; v=tuple(map(int,flax.__version__.split('.')[:2])); sys.exit(v<(0,12))"; then
      python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/flaxsite .whl/flax-*.whl \
        && export PYTHONPATH=/tmp/flaxsite:/tmp/site
    fi
  fi
  python3 -c "import jax, flax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
} >>"$LOG" 2>&1

# stage SECONDS NAME ARGS...: one scripts/bench.py run on the GPU, bounded by `timeout` (its
# children by --child_timeout_s), writing $OUT/NAME.json and appending to $LOG; a failing stage
# does not stop the next.
stage() {
  local t=$1 name=$2; shift 2
  echo "=== $name $(date -u +%T)" >>"$LOG"
  timeout "$t" python3 scripts/bench.py --platform=cuda --child_timeout_s=$((t * 2 / 3)) "$@" \
    --out "$OUT/$name.json" >>"$LOG" 2>&1
  echo "=== $name rc=$? $(date -u +%T)" >>"$LOG"
  pkill -f -- --_child_out; sleep 1  # a child orphaned by timeout must not hold the GPU
}
