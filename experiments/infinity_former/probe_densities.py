"""The LTM attention densities N(mu, sigma^2) of a trained sorting model, and the histogram that
sticky sampling would build from them: how focused are the model's long-term reads?

  python experiments/infinity_former/probe_densities.py --workdir=runs/s7/sortpl/inf_1024 \
      --length=1024 --set data.batch_size=16 --set model.block_len=64 \
      --set model.infinity_former.num_basis=64 --set model.infinity_former.num_samples=64 \
      --set model.infinity_former.num_bins=32 "--set=model.infinity_former.basis_widths=(0.02,0.05)"

(--set: the overrides the model was trained with, so the checkpoint's shapes match.) Runs the
model block by block on --docs fresh documents and prints, per layer, the median and 10th/90th
percentiles of sigma and mu over every read of a filled LTM, and how many of the histogram's bins
hold 90% of the mass of the last block's densities (a uniform histogram: 90% of the bins), and
how many distinct sample points the official random draw (sticky_draw='categorical': bins' left
edges) gives from that histogram, against the quantiles' (attempt 13).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/sorting/infinity_former.py:cpu,length=256")
  parser.add_argument("--workdir", required=True, help="restore the latest checkpoint from here")
  parser.add_argument("--length", type=int, default=1024)
  parser.add_argument("--docs", type=int, default=16)
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  args = parser.parse_args()

  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx
  from eval_memory import load_model
  from longctx.data import sorting
  from longctx.layers.infinity_former import InfinityFormerAttention
  from longctx.ops import continuous_attention as cont

  cfg, graphdef, params, _ = load_model(args.config, args.set, args.workdir)
  model = nnx.merge(graphdef, params)

  reads = []  # (mu, var) [B, H, L] of every read, in call order (layer by layer, block by block)
  original_read = InfinityFormerAttention.read

  def recording_read(self, x, coeffs):
    z, mu, var = original_read(self, x, coeffs)
    reads.append((np.asarray(mu), np.asarray(var)))
    return z, mu, var
  InfinityFormerAttention.read = recording_read

  data = sorting.eval_batch(1, args.docs, args.length)
  b, t = data["inputs"].shape
  block = cfg.model.block_len
  memory = model.init_memory(b)
  for s in range(t // block):  # eager, one block at a time: a probe, not a hot path
    positions = jnp.broadcast_to(jnp.arange(s * block, (s + 1) * block, dtype=jnp.int32), (b, block))
    _, memory = model(jnp.asarray(data["inputs"][:, s * block:(s + 1) * block]), memory,
                      positions=positions, reset=jnp.full((b,), s == 0))

  layers = cfg.model.num_layers
  first_filled = cfg.model.infinity_former.stm_blocks + 1  # blocks before it read an empty LTM
  result = {"workdir": args.workdir, "length": args.length, "docs": b}
  for layer in range(layers):
    own = reads[layer::layers][first_filled:]
    mu = np.stack([r[0] for r in own])
    sigma = np.sqrt(np.stack([r[1] for r in own]))
    bins = cfg.model.infinity_former.num_bins
    hist = np.asarray(cont.density_histogram(jnp.asarray(own[-1][0]), jnp.asarray(own[-1][1]), bins))
    cumulative = np.sort(hist, -1)[:, ::-1].cumsum(-1)
    m = cfg.model.infinity_former.num_samples
    keys = jax.random.split(jax.random.key(layer), hist.shape[0])
    drawn = np.asarray(cont.histogram_categorical_draw(keys, jnp.asarray(hist), m))
    quantiles = np.asarray(cont.histogram_quantiles(jnp.asarray(hist), m))
    distinct = lambda pts: round(float(np.mean([len(np.unique(p)) for p in pts])), 1)
    pct = lambda x: [round(float(np.percentile(x, q)), 3) for q in (10, 50, 90)]
    result[f"layer {layer}"] = {
        "sigma p10/p50/p90": pct(sigma), "mu p10/p50/p90": pct(mu),
        f"bins holding 90% of the last histogram (of {bins})":
            round(float(np.mean((cumulative < 0.9).sum(-1) + 1)), 1),
        f"distinct points of {m}: random draw / quantiles": [distinct(drawn), distinct(quantiles)]}
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  main()
