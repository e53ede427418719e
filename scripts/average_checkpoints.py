"""Average the parameters of several checkpoints of one run into a new workdir, to evaluate.

  python scripts/average_checkpoints.py --out=runs/fam_avg runs/fam:4500 runs/fam:4700 runs/fam2
  python -m longctx.main --config=<the run's config and overrides> --workdir=runs/fam_avg \
    --config.train.steps=<the step printed>      # restores the average and only evaluates

Each source is WORKDIR[:STEP] (STEP: one of WORKDIR/checkpoints' steps; none: the latest). The
output workdir gets checkpoints/<the last source's step> (that source's optimizer state and data
position, the mean of all the params: longctx.checkpoint.average_checkpoints) and the last
source's config.json, so main.py and the probes check the model against it. With train.steps at
that step, main.py trains nothing and runs the evaluators on the average.
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from longctx import checkpoint as ckpt_lib  # noqa: E402


def parse_source(text: str):
  """'WORKDIR[:STEP]' -> (WORKDIR/checkpoints, STEP or None); the workdir must exist."""
  workdir, step = text, None
  head, sep, tail = text.rpartition(":")
  if sep and tail.isdigit():
    workdir, step = head, int(tail)
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise FileNotFoundError(f"source {text!r}: {os.path.join(workdir, 'checkpoints')} is not a directory")
  return workdir, step


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", required=True, help="the new workdir (must not hold checkpoints)")
  parser.add_argument("sources", nargs="+", help="WORKDIR[:STEP], at least two")
  args = parser.parse_args(argv)
  sources = [parse_source(s) for s in args.sources]
  step = ckpt_lib.average_checkpoints(
      [(os.path.join(w, "checkpoints"), s) for w, s in sources], os.path.join(args.out, "checkpoints"))
  config = os.path.join(sources[-1][0], "config.json")
  if os.path.exists(config):
    shutil.copyfile(config, os.path.join(args.out, "config.json"))
  print(f"wrote {args.out}/checkpoints/{step}: the mean of {len(sources)} checkpoints' params")
  return step


if __name__ == "__main__":
  main()
