"""How large does a trained FAM grow along a prompt? Streams passkey evaluation prompts through a
FAM model block by block and prints, per layer, the RMS of the FAM rows after block 1, 2, 4, ...,
beside the RMS of the block's own residual stream input (the token embeddings). The FAM's residual
is its own previous value (Algorithm 2: F_tau = F_{tau-1} + attention + FF), so every block adds to
it; a FAM that grows with the number of blocks reaches the attention of later blocks with
statistics the model never saw in training.

  python experiments/fam/probe_fam_norms.py --workdir=runs/s11/pk_fam_ft --length=8192

(--set: the overrides the model was trained with, so the checkpoint's shapes match.)
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/passkey/fam.py:cpu")
  parser.add_argument("--workdir", required=True, help="restore the latest checkpoint from here")
  parser.add_argument("--length", type=int, default=8192)
  parser.add_argument("--depth", type=float, default=0.0)
  parser.add_argument("--prompts", type=int, default=4)
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  args = parser.parse_args()

  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx
  from eval_memory import load_model
  from longctx.data import passkey

  cfg, graphdef, params, _ = load_model(args.config, args.set, args.workdir)
  block = cfg.model.block_len
  if args.length % block:
    sys.exit(f"--length={args.length} is not a multiple of model.block_len={block}")
  examples = [passkey.eval_example(args.length, args.depth, cfg.evals.passkey.key_len, seed)
              for seed in range(args.prompts)]
  tokens = jnp.asarray(np.stack([e.tokens[:args.length] for e in examples]))

  @jax.jit
  def step(params, memory, inputs, positions, reset):
    model = nnx.merge(graphdef, params)
    _, memory = model(inputs, memory, positions=positions, reset=reset)
    return memory

  model = nnx.merge(graphdef, params)
  memory = model.init_memory(args.prompts)
  embed_rms = float(jnp.sqrt(jnp.mean(jnp.square(params["embed"]["embedding"]))))
  num_blocks = args.length // block
  report = {1 << i for i in range(num_blocks.bit_length())} | {num_blocks}
  print(f"{args.workdir}: {args.prompts} prompts of {args.length} tokens ({num_blocks} blocks of "
        f"{block}), depth {args.depth}; token embedding RMS {embed_rms:.3g}")
  print("| after block | " + " | ".join(f"FAM RMS, layer {i}" for i in range(cfg.model.num_layers)) + " |")
  print("|---:|" + "---:|" * cfg.model.num_layers)
  for b in range(num_blocks):
    s = b * block
    positions = jnp.broadcast_to(jnp.arange(s, s + block), (args.prompts, block))
    memory = step(params, memory, tokens[:, s:s + block], positions, jnp.full((args.prompts,), b == 0))
    if b + 1 in report:
      rms = [float(jnp.sqrt(jnp.mean(jnp.square(m["fam"])))) for m in memory]
      print(f"| {b + 1} | " + " | ".join(f"{r:.3g}" for r in rms) + " |")


if __name__ == "__main__":
  main()
