"""Do the absolute positions of a long prompt matter? Scores short passkey prompts whose rotary
positions are shifted by an offset, as if they were the last tokens of a much longer prompt
(offset = L - length stands for the end of an L-token prompt). Infini's local attention sees only
relative positions inside a block, so in exact arithmetic nothing changes; in float32 the rotary
angles p * theta^-i lose ~ulp(p) of precision at large p (0.06 rad at p = 1M for the fastest pair).
Same rows at every offset: positions are not what fades at length.

  python experiments/infini-attention/probe_position_offset.py --workdir=runs/s23/pk_a14 \
      --set model.infini.compensated_sum=False --offsets=0,14336,129024,1046528
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/passkey/infini.py:cpu")
  parser.add_argument("--workdir", required=True, help="restore the latest checkpoint from here")
  parser.add_argument("--length", type=int, default=2048)
  parser.add_argument("--offsets", default="0,14336,129024,1046528")
  parser.add_argument("--depths", default="0,0.5,1")
  parser.add_argument("--samples", type=int, default=8)
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  args = parser.parse_args()

  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx
  from eval_memory import load_model
  from longctx.data import passkey
  from longctx.models import scan

  cfg, graphdef, params, _ = load_model(args.config, args.set, args.workdir)
  depths = [float(d) for d in args.depths.split(",")]
  memory = nnx.merge(graphdef, params).init_memory(args.samples)
  run = jax.jit(lambda batch: scan.run_blocks(graphdef, params, memory, batch, cfg.model)[1]["correct"])
  examples = {d: [passkey.eval_example(args.length + 1, d, cfg.evals.passkey.key_len, seed)
                  for seed in range(args.samples)] for d in depths}

  print(f"{args.workdir}: {args.samples} prompts of {args.length} tokens per cell; token accuracy (%)")
  print("| position offset | " + " | ".join(f"depth {d:g}" for d in depths) + " |")
  print("|---:|" + "---:|" * len(depths))
  for offset in [int(o) for o in args.offsets.split(",")]:
    cells = []
    for depth in depths:
      tokens = np.stack([e.tokens for e in examples[depth]])
      answer = np.stack([e.answer_mask[1:] for e in examples[depth]])
      positions = np.arange(args.length, dtype=np.int32) + offset
      batch = {"inputs": jnp.asarray(tokens[:, :-1]), "targets": jnp.asarray(tokens[:, 1:]),
               "positions": jnp.asarray(np.broadcast_to(positions, (args.samples, args.length)))}
      cells.append(100.0 * np.asarray(run(batch))[answer].mean())
    print(f"| {offset:,} | " + " | ".join(f"{c:.0f}" for c in cells) + " |")


if __name__ == "__main__":
  main()
