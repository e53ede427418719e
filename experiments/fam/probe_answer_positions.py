"""Which of the key's digits does a trained passkey model get wrong? Scores evaluation prompts as
the passkey evaluator does (teacher-forced, streamed with the memory carried, longctx.evaluate
.Streamer) and prints the accuracy of each answer token by its position in the key, beside the
cell's token accuracy and exact match.

  python experiments/fam/probe_answer_positions.py --workdir=runs/s46/fam_a21 \
    --set model.mlp_dim=256 --set data.prompt_steps=4 --set data.prompt_steps_from_step=1500 \
    --set "data.seq_len_schedule=((1500,2048),)"

(--set: the overrides the model was trained with, so the checkpoint's shapes and config match.)
The prompts' seeds (--seed_base + i) differ from the evaluator's, so these are fresh prompts.
--train_steps=100,101,... scores the training source's batches of those steps instead (the
training layout: random filler phase, depths drawn as in training; one-step batches only).
--errors also names what the model predicts where it is wrong: each answer position is scored
with all ten digits as its target (a batch of 10) and the most likely one taken; a wrong digit
is tallied by the key positions that hold it ("digit 5" = it answered the key's 5th digit).
"""
import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/passkey/fam.py:cpu")
  parser.add_argument("--workdir", required=True, help="restore the latest checkpoint from here")
  parser.add_argument("--lengths", default="2048,8192")
  parser.add_argument("--depths", default="0.5,1.0")
  parser.add_argument("--prompts", type=int, default=40)
  parser.add_argument("--seed_base", type=int, default=777000)
  parser.add_argument("--train_steps", default="", help="score these steps' training batches")
  parser.add_argument("--errors", action="store_true", help="tally what the wrong answers are")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  args = parser.parse_args()

  import numpy as np
  from eval_memory import load_model
  from longctx.data import passkey
  from longctx.data.sources import PasskeySource
  from longctx.evaluate import Streamer

  cfg, graphdef, params, _ = load_model(args.config, args.set, args.workdir)
  ev = cfg.evals.passkey
  streamer = Streamer(graphdef, cfg.model, ev.chunk_blocks)
  row = lambda name, hits: print(f"| {name} | " + " | ".join(f"{100 * h:.0f}" for h in hits.mean(0))
                                 + f" | {100 * hits.mean():.1f} | {100 * hits.all(1).mean():.0f} |")
  if args.train_steps:
    source = PasskeySource(cfg.data, cfg.model.block_len)
    hits = []
    for step in map(int, args.train_steps.split(",")):
      batch = source.batch(step)
      if "positions" in batch:
        sys.exit(f"step {step} is a multi-step batch (data.prompt_steps_from_step): pick an earlier one")
      res = streamer.score(params, batch["inputs"], batch["targets"], batch["weights"])
      hits += [res["correct"][r][batch["weights"][r] > 0] for r in range(len(batch["inputs"]))]
    print(f"{args.workdir}: training batches of steps {args.train_steps}, {len(hits)} rows")
    print("| batches | " + " | ".join(f"token {i + 1} %" for i in range(ev.key_len))
          + " | token accuracy % | exact match % |")
    print("|---|" + "---:|" * (ev.key_len + 2))
    row(f"train, {batch['inputs'].shape[1]} tokens", np.asarray(hits, np.float64))
    return
  print(f"{args.workdir}: {args.prompts} prompts per cell, key of {ev.key_len} tokens")
  print("| length | depth | " + " | ".join(f"token {i + 1} %" for i in range(ev.key_len))
        + " | token accuracy % | exact match % |")
  print("|---:|---:|" + "---:|" * (ev.key_len + 2))
  errors = collections.Counter()   # (length, depth, answer position, what it answered) -> count
  for length in map(int, args.lengths.split(",")):
    for depth in map(float, args.depths.split(",")):
      hits = []
      for i in range(args.prompts):
        ex = passkey.eval_example(length + 1, depth, ev.key_len, seed=args.seed_base + i,
                                  template=ev.template)
        tokens, mask = np.asarray(ex.tokens), np.asarray(ex.answer_mask)
        res = streamer.score(params, tokens[None, :-1], tokens[None, 1:],
                             mask[None, 1:].astype(np.float32))
        hits.append(res["correct"][0][mask[1:]])
        if args.errors:
          for pos, predicted in wrong_answers(streamer, params, tokens, mask, hits[-1]):
            errors[(length, depth, pos, predicted)] += 1
      row(f"{length} | {depth}", np.asarray(hits, np.float64))   # hits [prompts, key_len]
  if args.errors:
    print("\n| length | depth | answer position | wrong answer is the key's | prompts |")
    print("|---:|---:|---:|---|---:|")
    for (length, depth, pos, predicted), n in sorted(errors.items()):
      print(f"| {length} | {depth} | {pos} | {predicted} | {n} |")


def wrong_answers(streamer, params, tokens, mask, hits):
  """(answer position 1.., 'digit j,k' or 'no digit') for each wrongly read answer token."""
  import numpy as np
  from longctx.data.tokenizers import ByteTokenizer
  digits = np.asarray([ByteTokenizer().encode(str(d))[0] for d in range(10)])
  inputs, targets = tokens[None, :-1], tokens[None, 1:]
  weights = np.repeat(mask[None, 1:].astype(np.float32), 10, 0)
  where = np.flatnonzero(mask[1:])
  key = [int(np.flatnonzero(digits == t)[0]) for t in targets[0, where]]
  out = []
  for j in np.flatnonzero(~hits.astype(bool)):
    candidates = np.repeat(targets, 10, 0)
    candidates[:, where[j]] = digits   # row d: the answer's j-th token replaced by digit d
    loss = streamer.score(params, np.repeat(inputs, 10, 0), candidates, weights)["loss"]
    predicted = int(np.argmin(loss[:, where[j]]))
    holders = [str(k + 1) for k, d in enumerate(key) if d == predicted]
    out.append((j + 1, "digit " + ",".join(holders) if holders else "no digit"))
  return out


if __name__ == "__main__":
  main()
