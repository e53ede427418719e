"""Does the key's place inside its block decide whether it is read? Token accuracy by key offset.

The evaluator's prompts (phase 0) put the key at one offset inside its block per (length, depth)
cell: at 2K and 32K depth 0.75 the key sentence starts at token 90 of its block, so the second
copy of the key ("... Remember it. 12345 is the pass key.") is cut by the block boundary, while
at 8K and 128K (offset 92) it is not. This probe moves the key through every offset by shifting
the filler phase (passkey_prompt(filler_phase=)), scores each prompt teacher-forced as the
evaluator does, and groups the prompts by layout:
  split  a copy of the key's digits straddles a block boundary (first copy, second copy, none);
  local  the key sentence starts in the answer's own block (read by the local attention only).

  python experiments/infini-attention/probe_key_offset.py --workdir=runs/s26/pk_a23 \
      --length=2048 --depths=0.75,1.0 --samples=4
"""
import argparse
import collections
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/passkey/infini.py:cpu")
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--length", type=int, default=2048)
  parser.add_argument("--depths", default="0.75,1.0")
  parser.add_argument("--samples", type=int, default=4, help="keys per phase (eval seeds 0..n-1)")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  parser.add_argument("--out", default=None, help="JSON file for the per-prompt rows")
  args = parser.parse_args()

  from eval_memory import load_model
  from longctx import evaluate
  from longctx.data import passkey
  from longctx.data.tokenizers import ByteTokenizer

  cfg, graphdef, params, _ = load_model(args.config, args.set, args.workdir)
  if cfg.data.tokenizer != "bytes":  # the layout below counts characters as tokens
    sys.exit(f"data.tokenizer={cfg.data.tokenizer!r}: this probe needs the byte tokenizer")
  block = cfg.model.block_len
  tok = ByteTokenizer()
  streamer = evaluate.Streamer(graphdef, cfg.model, cfg.evals.passkey.chunk_blocks)
  key_len = cfg.evals.passkey.key_len
  keys = [passkey.eval_example(args.length, 0.0, key_len, seed).key for seed in range(args.samples)]
  rows = []
  for depth in (float(d) for d in args.depths.split(",")):
    for phase in range(passkey.filler_cycle_length(tok)):
      examples = [passkey.passkey_prompt(args.length, depth, key, tok, filler_phase=phase)
                  for key in keys]
      for ex, (acc, exact) in zip(examples, evaluate.score_examples(streamer, params, examples)):
        cut = passkey.cut_key_copies(ex, tok, block)
        answer_block = (len(ex.tokens) - key_len) // block
        rows.append({"depth": depth, "phase": phase, "offset": ex.key_start % block,
                     "split": ("first", "second")[cut[0]] if cut else "none",
                     "local": ex.key_start // block == answer_block, "token_accuracy": acc,
                     "exact_match": exact})
  if args.out:
    with open(args.out, "w") as f:
      json.dump(rows, f)
  for depth in sorted({r["depth"] for r in rows}):
    print(f"depth {depth}, {args.length} tokens, {args.samples} keys per phase "
          f"(phase 0 = the evaluator's prompt: offset "
          f"{next(r['offset'] for r in rows if r['depth'] == depth and r['phase'] == 0)})")
    groups = collections.defaultdict(list)
    for r in rows:
      if r["depth"] == depth:
        groups[(r["split"], r["local"])].append(r["token_accuracy"])
    for (split, local), accs in sorted(groups.items()):
      mean, se = evaluate.mean_and_se(accs)
      print(f"  key copy cut by a block boundary: {split:6s} key in the answer's block: "
            f"{str(local):5s} prompts {len(accs):4d}  token accuracy {100 * mean:5.1f} "
            f"(se {100 * se:.1f})")


if __name__ == "__main__":
  main()
