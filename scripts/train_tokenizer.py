"""Trains a SentencePiece tokenizer on a folder of .txt files (or one file), for data.tokenizer=
'sentencepiece' with data.tokenizer_path=<prefix>.model.

  python scripts/train_tokenizer.py --input=corpus/train --model_prefix=/tmp/sp8k --vocab_size=8000

Defaults: unigram model, byte fallback (every byte sequence has an encoding: no unknown pieces), no
dummy prefix (so bits per byte is exact, see longctx.data.tokenizers.SentencePieceTokenizer), and the
ids pad=0, unk=1, bos=2, eos=3 (eos ends generated summaries). Files are read with the same checks as
training (longctx.data.local_text): empty or non-UTF-8 files are errors, never skipped.
Needs `pip install 'longctx[data]'`.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from longctx.data import local_text  # noqa: E402


def train_tokenizer(input_path: str, model_prefix: str, vocab_size: int = 8000,
                    model_type: str = "unigram", max_sentence_length: int = 16384,
                    input_sentence_size: int = 1_000_000) -> str:
  """Trains and writes <model_prefix>.model/.vocab; returns the .model path."""
  import sentencepiece as spm
  files = local_text.list_text_files(input_path) if os.path.isdir(input_path) else [input_path]
  lines = []
  for path in files:
    text = local_text.read_text_file(path)
    lines.extend(line for line in text.splitlines() if line.strip())
  spm.SentencePieceTrainer.Train(
      sentence_iterator=iter(lines), model_prefix=model_prefix, vocab_size=vocab_size,
      model_type=model_type, byte_fallback=True, add_dummy_prefix=False,
      split_by_whitespace=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
      pad_id=0, unk_id=1, bos_id=2, eos_id=3, max_sentence_length=max_sentence_length,
      input_sentence_size=input_sentence_size, shuffle_input_sentence=True,
      hard_vocab_limit=False, minloglevel=2)
  return model_prefix + ".model"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--input", required=True, help="a folder of .txt files or one text file")
  parser.add_argument("--model_prefix", required=True, help="writes <prefix>.model and <prefix>.vocab")
  parser.add_argument("--vocab_size", type=int, default=8000)
  parser.add_argument("--model_type", default="unigram", choices=("unigram", "bpe", "char", "word"))
  args = parser.parse_args(argv)
  try:
    path = train_tokenizer(args.input, args.model_prefix, args.vocab_size, args.model_type)
  except ValueError as e:
    sys.exit(f"train_tokenizer: {e}")
  print(path)


if __name__ == "__main__":
  main()
