"""Median training-step time of a passkey config under model/XLA knobs, one process per setting.

  python experiments/infini-attention/probe_step_time.py --config=configs/passkey/infini.py:cpu \
      --seq_len=2048 --steps=6 --set model.remat_policy=none --set model.scan_unroll=2

Builds the real training state and the real batches (sources.make_train_source at the given
step, so filler weighting is on past its start step), compiles the jitted step, runs one warm-up
step and `--steps` timed ones, and prints one JSON line (median and all step times, compile time).
Why: the passkey bar's budget is 30 minutes, so the number of steps it buys is set by the step
time of a small (d 128) model whose step is dominated by per-op overheads, not by FLOPs.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="configs/passkey/infini.py:cpu")
  p.add_argument("--seq_len", type=int, default=2048)
  p.add_argument("--steps", type=int, default=6)
  p.add_argument("--at_step", type=int, default=1100, help="training step whose batches are used")
  p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  a = p.parse_args()

  import jax
  from eval_memory import apply_overrides, load_config
  from longctx import config as config_lib
  from longctx import sharding, train
  from longctx.data import sources

  cfg = load_config(a.config)
  apply_overrides(cfg, [f"data.seq_len={a.seq_len}", "data.seq_len_schedule=()"] + a.set)
  config_lib.validate(cfg)
  mesh = sharding.make_mesh(cfg.mesh)
  graphdef, params, model = train.build_model(cfg)
  tx, schedule = train.make_optimizer(cfg)
  state = train.init_state(cfg, params, model, tx)
  jitted, state_sh, batch_sh = train.compile_train_step(cfg, graphdef, state, mesh, tx, schedule)
  source = sources.make_train_source(cfg)
  state = jax.device_put(state, state_sh)
  t0 = time.perf_counter()
  state, m = jitted(state, jax.device_put(source.batch(a.at_step), batch_sh))
  jax.block_until_ready(m)
  compile_s = time.perf_counter() - t0
  times = []
  for i in range(a.steps):
    batch = jax.device_put(source.batch(a.at_step + 1 + i), batch_sh)
    jax.block_until_ready(batch)
    t0 = time.perf_counter()
    state, m = jitted(state, batch)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t0)
  print(json.dumps({"config": a.config, "seq_len": a.seq_len, "set": a.set,
                    "compile_plus_first_s": round(compile_s, 2),
                    "median_step_s": round(statistics.median(times), 4),
                    "step_s": [round(t, 4) for t in times]}))


if __name__ == "__main__":
  main()
