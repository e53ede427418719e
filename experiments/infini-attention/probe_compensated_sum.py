"""Does float32 rounding of the compressive memory cost passkey accuracy at long lengths? Scores the
same passkey prompts with one trained checkpoint twice: M and z summed with plain float32 adds
(`model.infini.compensated_sum=False`) and with Kahan-compensated adds (True), cell by cell, so the
two variants see identical prompts and differ only in the rounding of the memory's sums.

  python experiments/infini-attention/probe_compensated_sum.py --workdir=runs/s23/pk_a14 \
      --lengths=131072,1048576 --depths=0,0.5,1 --samples=2 --out=/tmp/compensated.json

--trained_with_compensation: the checkpoint's train state holds the Kahan error terms (trained
with compensated_sum=True); by default it is assumed to hold plain (M, z) only.
--set: the overrides the model was trained with, so the checkpoint's shapes match.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/passkey/infini.py:cpu")
  parser.add_argument("--workdir", required=True, help="restore the latest checkpoint from here")
  parser.add_argument("--lengths", default="131072")
  parser.add_argument("--depths", default="0,0.5,1")
  parser.add_argument("--samples", type=int, default=2)
  parser.add_argument("--trained_with_compensation", action="store_true")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  parser.add_argument("--out", default="", help="JSON of every cell")
  args = parser.parse_args()

  from eval_memory import load_model
  from longctx import evaluate, train
  from longctx.data import passkey

  trained = f"model.infini.compensated_sum={args.trained_with_compensation}"
  cfg, _, params, _ = load_model(args.config, args.set + [trained], args.workdir)
  if cfg.model.attention != "infini":
    sys.exit(f"--config is model.attention={cfg.model.attention!r}: this probe needs 'infini'")
  ev = cfg.evals.passkey
  streamers = {}
  for compensated in (False, True):
    variant = cfg.copy_and_resolve_references()
    variant.model.infini.compensated_sum = compensated
    graphdef, _, _ = train.build_model(variant)  # same parameters, different memory pytree
    streamers[compensated] = evaluate.Streamer(graphdef, variant.model, ev.chunk_blocks)

  rows = []
  print(f"{args.workdir}: {args.samples} prompts per cell; token accuracy (%), plain / Kahan")
  for length in [int(n) for n in args.lengths.split(",")]:
    for depth in [float(d) for d in args.depths.split(",")]:
      examples = [passkey.eval_example(length + 1, depth, ev.key_len, seed=ev.seed * 1000003 + i,
                                       template=ev.template) for i in range(args.samples)]
      row = {"length": length, "depth": depth}
      for compensated, streamer in streamers.items():
        t0 = time.time()
        metrics = evaluate.cell_metrics(evaluate.score_examples(streamer, params, examples))
        row["kahan" if compensated else "plain"] = {**metrics, "seconds": time.time() - t0}
      rows.append(row)
      print(f"length {length:,} depth {depth:g}: "
            f"{100 * row['plain']['token_accuracy']:.0f} / {100 * row['kahan']['token_accuracy']:.0f}"
            f" (exact {100 * row['plain']['exact_match']:.0f} / {100 * row['kahan']['exact_match']:.0f})",
            flush=True)
  if args.out:
    with open(args.out, "w") as f:
      json.dump({"workdir": args.workdir, "config": args.config, "set": args.set, "rows": rows}, f,
                indent=1)


if __name__ == "__main__":
  main()
