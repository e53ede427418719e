"""In-process A/B of Infini's Kahan-compensated memory sums (model.infini.compensated_sum) on the
bench shape (configs/bench/decoder.py:cpu: 4 layers, d 256, 4 heads, block 256): both training
steps compiled in one process, timed interleaved, so host noise hits both alike.

  python experiments/bench/ab_compensated_sum.py --length=1024 --batch=4 --rounds=7
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--length", type=int, default=1024)
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--rounds", type=int, default=7)
  args = parser.parse_args()

  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx
  from bench import load_config
  from longctx.models import scan
  from longctx.models.decoder import Decoder

  steps = {}
  for compensated in (False, True):
    cfg = load_config("configs/bench/decoder.py:cpu")
    model_cfg = cfg.model
    model_cfg.infini.compensated_sum = compensated
    model = Decoder(model_cfg, nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    memory = model.init_memory(args.batch)
    grad = jax.jit(lambda p, m, b, g=graphdef, c=model_cfg: jax.grad(
        lambda p: scan.mean_loss(p, g, m, b, c)[0])(p))
    steps[compensated] = (grad, params, memory)
  tokens = np.random.default_rng(0).integers(0, 256, (args.batch, args.length + 1), dtype=np.int32)
  batch = {"inputs": jnp.asarray(tokens[:, :-1]), "targets": jnp.asarray(tokens[:, 1:])}
  times = {False: [], True: []}
  for _ in range(args.rounds + 1):  # the first round compiles
    for compensated, (grad, params, memory) in steps.items():
      t0 = time.perf_counter()
      jax.block_until_ready(grad(params, memory, batch))
      times[compensated].append(time.perf_counter() - t0)
  plain, kahan = (statistics.median(times[c][1:]) for c in (False, True))
  print(f"infini, bench cpu shape, {args.length} tokens x batch {args.batch}, {args.rounds} "
        f"interleaved rounds: median step plain {plain:.3f} s, Kahan {kahan:.3f} s, "
        f"Kahan / plain = {kahan / plain:.3f}")


if __name__ == "__main__":
  main()
