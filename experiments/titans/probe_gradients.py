"""How much learning signal reaches each part of a Titans model at initialisation? The norm of the
gradient of the S-NIAH answer loss (passkey needles at depth 0, the farthest from the question)
with respect to each parameter family, summed over layers, for each variant.

  python experiments/titans/probe_gradients.py --variants=lmm,mag,mal,mac
  python experiments/titans/probe_gradients.py --variants=mag --set model.titans.output_gate=mix
  python experiments/titans/probe_gradients.py --variants=mac --workdir=runs/niah_titans_mac

With --workdir the parameters are the latest checkpoint there (one variant), not the initial ones:
where a trained run's gradient-norm spikes come from.

Families: memory/<name> (W_Q, W_K, W_V, the initial weights W_0, the gates, the read-out), the
layer's other parts (attention, gate (x), persistent tokens, mlp, norms), embed and lm_head.
Under Adam a smaller gradient is not by itself slower learning (each parameter's step is
normalised); the probe shows where the loss reaches, not how fast a run learns.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def family(path: str) -> str:
  parts = path.split("/")
  if parts[0] != "layers":
    return parts[0]
  rest = parts[2:]                          # drop "layers/<i>"
  if rest[0] == "attention" and len(rest) > 1:
    rest = rest[1:]                         # the Titans layer's own modules
    if rest[0] == "memory":
      return "memory/" + rest[1]
  return rest[0]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--variants", default="lmm,mag,mal,mac")
  parser.add_argument("--length", type=int, default=512)
  parser.add_argument("--prompts", type=int, default=8)
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  parser.add_argument("--workdir", default=None, help="restore the latest checkpoint from here")
  args = parser.parse_args()
  if args.workdir and "," in args.variants:
    parser.error("--workdir holds one model: give one variant in --variants")

  import jax
  import jax.numpy as jnp
  from flax import nnx
  from eval_memory import load_model, niah_batch
  from longctx.models import scan

  results = {}
  for variant in args.variants.split(","):
    cfg, graphdef, params, _ = load_model(f"configs/niah/titans_{variant}.py:cpu", args.set,
                                          args.workdir)
    batch = niah_batch(cfg, args.length, args.prompts)
    memory = nnx.merge(graphdef, params).init_memory(args.prompts)
    grads = jax.jit(jax.grad(
        lambda p: scan.mean_loss(p, graphdef, memory, batch, cfg.model)[0]))(params)
    sums = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(grads):
      name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
      sums[family(name)] = sums.get(family(name), 0.0) + float(jnp.sum(jnp.square(leaf)))
    sums["(total)"] = sum(sums.values())
    results[variant] = {k: v ** 0.5 for k, v in sums.items()}

  names = sorted({k for r in results.values() for k in r})
  print("| family | " + " | ".join(results) + " |")
  print("|---|" + "---:|" * len(results))
  for k in names:
    print(f"| {k} | " + " | ".join(f"{r[k]:.2g}" if k in r else "" for r in results.values()) + " |")


if __name__ == "__main__":
  main()
