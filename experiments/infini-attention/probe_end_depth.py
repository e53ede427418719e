"""Why does depth 1 (the key in the last block, read by the local attention) fade with length
while the memory's depths hold? Swaps the memory the last block reads.

For each of `--samples` keys, a depth-1 prompt of `--length` tokens is streamed up to its last
block; that block (key sentence, question, answer) is then scored teacher-forced from:
  own     the memory its own prefix left (what the evaluator does);
  short   the memory of the first L - 128 tokens of a `--short`-token prompt (filler only, the same
          kind of memory a 2K prompt leaves; the last blocks are identical up to the partial filler);
  fresh   the initial (empty) memory;
A last block that reads its key from `short` or `fresh` but not from `own` says the long
memory's read disturbs the local copy.

  python experiments/infini-attention/probe_end_depth.py --workdir=runs/s24/pk_a17 --length=131072
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/passkey/infini.py:cpu")
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--length", type=int, default=131072)
  parser.add_argument("--short", type=int, default=2048)
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
  block = cfg.model.block_len
  for n in (args.length, args.short):
    if n % block or n <= block:
      sys.exit(f"--length/--short {n} must be a multiple of model.block_len={block} above it")
  fresh = nnx.merge(graphdef, params).init_memory(1)
  key_len = cfg.evals.passkey.key_len

  @jax.jit
  def last_block(memory, inputs, targets):
    batch = {"inputs": inputs[None], "targets": targets[None], "reset": jnp.zeros((1,), bool)}
    _, outs = scan.run_blocks(graphdef, params, memory, batch, cfg.model)
    return outs["correct"][0]

  def stream_prefix(tokens):
    # Stream in chunks of 32 blocks so a long prompt costs a few blocks of activations.
    memory, chunk = fresh, 32 * block
    for s in range(0, len(tokens), chunk):
      piece = tokens[s:s + chunk]
      batch = {"inputs": jnp.asarray(piece[None]), "targets": jnp.asarray(piece[None]),
               "reset": jnp.asarray([s == 0])}
      memory = _run(memory, batch)
    return memory

  run_cache = {}

  def _run(memory, batch):
    n = batch["inputs"].shape[1]
    if n not in run_cache:
      run_cache[n] = jax.jit(lambda m, b: scan.run_blocks(graphdef, params, m, b, cfg.model)[0])
    return run_cache[n](memory, batch)

  scores = {"own": [], "short": [], "fresh": []}
  for seed in range(args.samples):
    # Prompts of length + 1 tokens: `length` inputs, as the evaluator streams them.
    ex = passkey.eval_example(args.length + 1, 1.0, key_len, seed)
    short = passkey.eval_example(args.short + 1, 1.0, key_len, seed)
    inputs, targets = ex.tokens[:-1], ex.tokens[1:]
    memories = {"own": stream_prefix(inputs[:-block]), "fresh": fresh,
                "short": stream_prefix(short.tokens[:args.short - block])}
    last_in, last_tg = jnp.asarray(inputs[-block:]), jnp.asarray(targets[-block:])
    for name, mem in memories.items():
      correct = np.asarray(last_block(mem, last_in, last_tg))[-key_len:]
      scores[name].append(correct.mean())
    print(f"seed {seed} key {ex.key}: " + ", ".join(
        f"{k} {100 * v[-1]:.0f}%" for k, v in scores.items()), flush=True)
  print(f"{args.workdir} length {args.length:,} depth 1, {args.samples} keys, token accuracy %: "
        + ", ".join(f"{k} {100 * np.mean(v):.1f}" for k, v in scores.items()))


if __name__ == "__main__":
  main()
