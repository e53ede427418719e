"""Where does a trained Titans model's read break with length? Runs S-NIAH evaluation prompts
through the model block by block and prints, per layer, the RMS of the memory branch's output
(NeuralMemory.readout) and of the sliding-window attention's output (MAG / MAL) in the first,
middle and last blocks, with the answer's token accuracy, at each length given. A branch whose
RMS drifts with the prompt's length hands the next sub-layer inputs it never saw in training.

  python experiments/titans/probe_branches.py --config=configs/niah/titans_mal.py:cpu \\
      --workdir=runs/s32/niah_1200/mal_seed0 --lengths=512,2048 --depth=1
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--workdir", required=True, help="restore the latest checkpoint from here")
  parser.add_argument("--lengths", default="512,2048")
  parser.add_argument("--depth", type=float, default=0.0)
  parser.add_argument("--prompts", type=int, default=4)
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  args = parser.parse_args()

  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx
  from eval_memory import load_model, niah_batch
  from longctx.layers.local import BlockSlidingWindowAttention
  from longctx.layers.titans import NeuralMemory
  from longctx.models import scan

  cfg, graphdef, params, _ = load_model(args.config, args.set, args.workdir)
  records = {"memory": [], "window": []}   # per call, in call order: RMS over the block

  def rms(a):
    return jnp.sqrt(jnp.mean(jnp.square(a.astype(jnp.float32))))

  def record(kind, value):
    jax.debug.callback(lambda r: records[kind].append(float(r)), rms(value))

  original_readout = NeuralMemory.readout
  original_window = BlockSlidingWindowAttention.__call__

  def readout(self, reads, gate_input):
    out = original_readout(self, reads, gate_input)
    record("memory", out)
    return out

  def window(self, x, memory, **kw):
    y, memory = original_window(self, x, memory, **kw)
    record("window", y)
    return y, memory
  NeuralMemory.readout = readout
  BlockSlidingWindowAttention.__call__ = window

  layers = cfg.model.num_layers
  for length in (int(n) for n in args.lengths.split(",")):
    for kind in records:
      records[kind].clear()
    batch = niah_batch(cfg, length, args.prompts, args.depth)
    memory = nnx.merge(graphdef, params).init_memory(args.prompts)
    _, outs = jax.jit(lambda p, m, b: scan.run_blocks(graphdef, p, m, b, cfg.model))(
        params, memory, batch)
    jax.block_until_ready(outs)
    jax.effects_barrier()
    acc = float(jnp.sum(outs["correct"] * batch["weights"]) / jnp.sum(batch["weights"]))
    print(f"{length} tokens, depth {args.depth}: answer token accuracy {acc:.2f}")
    blocks = length // cfg.model.block_len
    for kind, values in records.items():
      if not values:
        continue
      # Calls per block: one per layer for MAG / MAL / LMM; MAC reads its memory twice per
      # layer (retrieve, then read again), so its slots are calls, not layers.
      slots = len(values) // blocks
      v = np.array(values).reshape(blocks, slots)
      label = "layer" if slots == layers else "call"
      for i in range(slots):
        c = v[:, i]
        print(f"  {label} {i} {kind:6s} RMS: first {c[0]:.3g}, middle {c[len(c) // 2]:.3g}, "
              f"last {c[-1]:.3g}, max {c.max():.3g}")


if __name__ == "__main__":
  main()
