"""How far is a weighted short prompt's memory from a real long prompt's? Streams passkey prompts
through a trained Infini model and compares, per layer, the final normalised memory M / sum(z)
(the part of the state a read depends on, up to the query) with that of a reference prompt:
relative Frobenius distance ||A - B|| / ||B||. A faithful proxy of length would match the
reference the way a second real prompt of the same length (another key) does.

  python experiments/infini-attention/probe_memory_state.py --workdir=runs/s23/pk_a15 \
      --set model.infini.update_rule=linear --set model.infini.compensated_sum=True --reference=131072 \
      --compare=131072:1:1,16384:8:0,2048:64:0,2048:1:0

--compare: LENGTH:WEIGHT:SEED[:PROFILE] items (seed 0 is the reference's prompt; another seed,
another key; PROFILE uniform (default) or geometric: data.filler_weight_profile).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/passkey/infini.py:cpu")
  parser.add_argument("--workdir", required=True, help="restore the latest checkpoint from here")
  parser.add_argument("--reference", type=int, default=131072, help="length of the real prompt")
  parser.add_argument("--compare", default="131072:1:1,16384:8:0,2048:64:0,2048:1:0")
  parser.add_argument("--depth", type=float, default=0.0)
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
    sys.exit(f"--config is model.attention={cfg.model.attention!r}: this probe needs 'infini'")
  memory = nnx.merge(graphdef, params).init_memory(1)
  run = jax.jit(lambda batch: scan.run_blocks(graphdef, params, memory, batch, cfg.model)[0])

  def normalised_memory(length, weight, seed, profile="uniform"):
    example = passkey.eval_example(length + 1, args.depth, cfg.evals.passkey.key_len, seed)
    batch = {"inputs": jnp.asarray(example.tokens[None, :-1]),
             "targets": jnp.asarray(example.tokens[None, 1:])}
    if weight != 1:
      batch["write_weights"] = jnp.asarray(passkey.filler_write_weights(
          example, weight, profile=profile)[None, :-1])
    layers = run(batch)
    return [np.asarray(m["memory"][0], np.float64)
            / np.asarray(m["norm"][0], np.float64).sum(-1)[:, None, None] for m in layers]

  reference = normalised_memory(args.reference, 1.0, 0)
  print(f"{args.workdir}: ||M/sum z - reference|| / ||reference|| per layer; reference: a real "
        f"{args.reference:,}-token prompt, seed 0, depth {args.depth:g}")
  print("| prompt | weight r | profile | seed | " + " | ".join(f"layer {i}" for i in range(len(reference)))
        + " |")
  print("|---:|---:|---|---:|" + "---:|" * len(reference))
  for item in args.compare.split(","):
    length, weight, seed, *profile = item.split(":")
    profile = profile[0] if profile else "uniform"
    state = normalised_memory(int(length), float(weight), int(seed), profile)
    dists = [np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(state, reference)]
    print(f"| {int(length):,} | {float(weight):g} | {profile} | {seed} | "
          + " | ".join(f"{d:.3f}" for d in dists) + " |", flush=True)


if __name__ == "__main__":
  main()
