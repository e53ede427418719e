"""Does weighting a short prompt's filler stand in for a long prompt? Scores passkey prompts of one
length with the filler written r times over into the compressive memory (the training trick
data.filler_weight_max; ops/linear_memory.compressive_memory_update's write_weights), for several
r, teacher-forced token accuracy on the key per depth. Compare the row for r with the evaluator's
row at r x length: if they agree, the weighted filler is a faithful proxy of length for the memory.

  python experiments/infini-attention/probe_filler_weight.py --workdir=runs/s22/pk_a11 \
      --length=2048 --weights=1,4,16,64,512

(--set: the overrides the model was trained with; eval_memory.load_model names any model field
that differs from the workdir's config.json.)
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
  parser.add_argument("--weights", default="1,4,16,64,512")
  parser.add_argument("--depths", default="0,0.25,0.5,0.75,1")
  parser.add_argument("--samples", type=int, default=8)
  parser.add_argument("--profile", default="uniform", choices=("uniform", "geometric"),
                      help="how r is spread over the filler (data.filler_weight_profile)")
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
  if cfg.model.attention != "infini":
    sys.exit(f"--config is model.attention={cfg.model.attention!r}: write weights need 'infini'")
  key_len = cfg.evals.passkey.key_len
  weights = [float(w) for w in args.weights.split(",")]
  depths = [float(d) for d in args.depths.split(",")]
  memory = nnx.merge(graphdef, params).init_memory(args.samples)
  run = jax.jit(lambda batch: scan.run_blocks(graphdef, params, memory, batch, cfg.model)[1]["correct"])

  print(f"{args.workdir}: {args.samples} prompts of {args.length} tokens per cell, {args.profile} "
        "filler weights; token accuracy (%)")
  print("| filler weight r | r x length | " + " | ".join(f"depth {d:g}" for d in depths) + " |")
  print("|---:|---:|" + "---:|" * len(depths))
  for r in weights:
    cells = []
    for depth in depths:
      examples = [passkey.eval_example(args.length + 1, depth, key_len, seed)
                  for seed in range(args.samples)]
      tokens = np.stack([e.tokens for e in examples])
      answer = np.stack([e.answer_mask[1:] for e in examples])
      batch = {"inputs": jnp.asarray(tokens[:, :-1]), "targets": jnp.asarray(tokens[:, 1:]),
               "write_weights": jnp.asarray(np.stack(
                   [passkey.filler_write_weights(e, r, profile=args.profile)[:-1] for e in examples]))}
      correct = np.asarray(run(batch))
      cells.append(100.0 * correct[answer].mean())
    print(f"| {r:g} | {int(r * args.length):,} | " + " | ".join(f"{c:.0f}" for c in cells) + " |")


if __name__ == "__main__":
  main()
