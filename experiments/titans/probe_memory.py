"""How alive is a trained Titans model's neural memory? Runs S-NIAH evaluation prompts through the
model block by block and prints, per layer, the largest |entry| of each memory weight matrix at the
end of the prompt, beside the same for the learned initial weights W_0, and the gates' mean
and largest values (theta, eta, alpha) per layer over the prompt's tokens. An eta of 1 is
momentum that never decays: the weights then grow with the prompt's length (attempt 8 in
experiments/titans/README.md).

  python experiments/titans/probe_memory.py --workdir=runs/s9/niah/mac_clip \
      --config=configs/niah/titans_mac.py:cpu --length=1024

(--set: the overrides the model was trained with, so the checkpoint's shapes match.) A memory
that decayed into W = 0 (the zero saddle, tests/test_neural_memory.py) prints 0.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/niah/titans_mac.py:cpu")
  parser.add_argument("--workdir", required=True, help="restore the latest checkpoint from here")
  parser.add_argument("--length", type=int, default=1024)
  parser.add_argument("--prompts", type=int, default=4)
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  args = parser.parse_args()

  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx
  from eval_memory import load_model, niah_batch
  from longctx.layers.titans import NeuralMemory
  from longctx.models import scan

  cfg, graphdef, params, meta = load_model(args.config, args.set, args.workdir)

  gates = []   # per call of NeuralMemory.gates, in call order: (theta, eta, alpha) means
  original_gates = NeuralMemory.gates

  def recording_gates(self, x):
    out = original_gates(self, x)
    jax.debug.callback(lambda *g: gates.append([(float(np.mean(a)), float(np.max(a))) for a in g]),
                       *out)
    return out
  NeuralMemory.gates = recording_gates

  batch = niah_batch(cfg, args.length, args.prompts)
  model = nnx.merge(graphdef, params)
  memory = model.init_memory(args.prompts)
  memory, outs = jax.jit(lambda p, m, b: scan.run_blocks(graphdef, p, m, b, cfg.model))(
      params, memory, batch)
  jax.block_until_ready(outs)
  step = meta.get("data_step") if isinstance(meta, dict) else meta
  print(f"{args.workdir} (step {step}), {args.prompts} prompts of {args.length} tokens, "
        f"answer token accuracy {float(jnp.sum(outs['correct'] * batch['weights']) / jnp.sum(batch['weights'])):.2f}")
  flat = jax.tree_util.tree_flatten_with_path(memory)[0]
  initial = {jax.tree_util.keystr(p): np.asarray(a)
             for p, a in jax.tree_util.tree_flatten_with_path(params)[0]
             if "initial_weights" in jax.tree_util.keystr(p)}
  for path, leaf in flat:
    name = jax.tree_util.keystr(path)
    if "weights" in name:
      print(f"  end of prompt {name}: max |W| = {float(jnp.abs(leaf).max()):.3g}")
  for name, w0 in initial.items():
    print(f"  learned W_0 {name}: max |W_0| = {np.abs(w0).max():.3g}")
  g = np.array(gates)      # [calls, (theta, eta, alpha), (mean, max)]; calls cycle over layers
  layers = cfg.model.num_layers
  if len(g) % layers:
    print(f"  {len(g)} gate calls do not split over {layers} layers: per-layer gates not shown")
  for i in range(layers if len(g) % layers == 0 else 0):
    c = g[i::layers]
    print(f"  layer {i} gates, mean / max: theta {c[:, 0, 0].mean():.3g} / {c[:, 0, 1].max():.3g}, "
          f"eta {c[:, 1, 0].mean():.3g} / {c[:, 1, 1].max():.3g}, "
          f"alpha {c[:, 2, 0].mean():.3g} / {c[:, 2, 1].max():.3g}")


if __name__ == "__main__":
  main()
