"""Builds a local text corpus for the `text` task from a folder of plain-text files: every .txt file
(checked like training does: non-empty, valid UTF-8) is copied into OUT/train or, for every
`--heldout_every`-th file in sorted order, into OUT/heldout.

  python scripts/make_text_corpus.py                        # Vim's help files -> data/vimdoc
  python scripts/make_text_corpus.py --src=~/books --out=data/books --heldout_every=10

Vim's help (/usr/share/vim/vim*/doc, ~150 files, 10 MB of long technical documents, Vim license)
is the default because it ships with the system's packages. A file that fails the checks stops the
script with its name (nothing is skipped silently).
"""
import argparse
import glob
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from longctx.data import local_text  # noqa: E402


def default_src() -> str:
  found = sorted(glob.glob("/usr/share/vim/vim*/doc"))
  return found[-1] if found else ""


def make_corpus(src: str, out: str, heldout_every: int = 15) -> dict:
  paths = local_text.list_text_files(src)
  counts = {"train": 0, "heldout": 0}
  for split in counts:
    os.makedirs(os.path.join(out, split), exist_ok=True)
  for i, path in enumerate(paths):
    local_text.read_text_file(path)   # raises on empty / non-UTF-8 files
    split = "heldout" if heldout_every > 0 and i % heldout_every == heldout_every - 1 else "train"
    name = os.path.relpath(path, src).replace(os.sep, "__")
    shutil.copyfile(path, os.path.join(out, split, name))
    counts[split] += 1
  return counts


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--src", default=default_src())
  parser.add_argument("--out", default="data/vimdoc")
  parser.add_argument("--heldout_every", type=int, default=15)
  args = parser.parse_args(argv)
  try:
    counts = make_corpus(os.path.expanduser(args.src), args.out, args.heldout_every)
  except ValueError as e:
    sys.exit(f"make_text_corpus: {e}")
  print(f"{args.out}: {counts['train']} training and {counts['heldout']} held-out documents")


if __name__ == "__main__":
  main()
