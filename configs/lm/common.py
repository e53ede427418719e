"""Shared presets of the language-modelling configs (configs/lm/<arch>.py): the text task
(longctx.data.text: documents streamed through batch slots, memory carried across steps) on a local
folder of .txt files, scored in bits per byte on held-out files.

Presets:
  smoke  a tiny byte model (seconds; tests point `path=` / `heldout=` at a temporary corpus)
  cpu    a small byte model on data/vimdoc/{train,heldout} (`python scripts/make_text_corpus.py`)
  paper  the paper's model size (per architecture file), a 32K SentencePiece vocabulary
         (`tokenizer=FILE.model`, scripts/train_tokenizer.py trains one) on the user's corpus
         (`path=`, `heldout=`: folders of .txt files, e.g. FineWeb-Edu or WikiText-103 exported to
         text; neither is a tfds dataset this code can download); build/compile only here.
Arguments: `<preset>[,path=FOLDER][,heldout=FOLDER][,tokenizer=FILE]`, plus the architecture's own.
"""
from longctx import config as config_lib

DEFAULT_TRAIN = "data/vimdoc/train"
DEFAULT_HELDOUT = "data/vimdoc/heldout"
PAPER_TOKENIZER = "lm_sp32k.model"

# Titans Table 1 does not give layer counts or widths (papers.md 2(b)); the shapes follow the Gated
# DeltaNet recipe the paper copies its baselines from: 340M and 400M = 24 layers x d 1024 (400M:
# SwiGLU 4096 instead of 2816, the ~15% larger size class), 760M = 24 layers x d 1536; heads of 64.
# Training (Sec. 5.1): 4K context, AdamW lr 4e-4 cosine, weight decay 0.1, 0.5M tokens per batch
# (128 x 4096), 15B tokens (340M/400M, ~28.6K steps) or 30B (760M, ~57.2K steps).
TITANS_SIZES = {
    "340m": dict(d_model=1024, num_heads=16, num_layers=24, mlp_dim=2816, steps=28610),
    "400m": dict(d_model=1024, num_heads=16, num_layers=24, mlp_dim=4096, steps=28610),
    "760m": dict(d_model=1536, num_heads=24, num_layers=24, mlp_dim=4096, steps=57220),
}


def lm_config(attention: str, arg: str, paper_model: dict, paper_train: dict, **arch_args):
  """The text-task config of `attention`. paper_model / paper_train: the paper preset's model and
  train fields. arch_args: the architecture's own config arguments and their defaults; returns
  (cfg, parsed argument)."""
  a = config_lib.parse_arg(arg, preset="cpu", path="", heldout="", tokenizer="", **arch_args)
  cfg = config_lib.base_config()
  cfg.model.attention = attention
  cfg.data.update(task="text", source="local", path=a.path or DEFAULT_TRAIN, split="train")
  cfg.evals.run = ("lm",)
  cfg.evals.lm.update(source="local", path=a.heldout or DEFAULT_HELDOUT)
  if a.preset == "smoke":
    cfg.model.update(d_model=32, num_heads=2, num_layers=2, mlp_dim=64, block_len=16)
    cfg.data.update(seq_len=64, batch_size=2)
    cfg.train.update(steps=4, lr=3e-3, warmup_steps=1, log_every=2)
    cfg.checkpoint.update(every_steps=2, keep=1, async_save=False)
    cfg.evals.lm.update(max_tokens=256, chunk_blocks=4)
  elif a.preset == "cpu":
    cfg.model.update(d_model=128, num_heads=4, num_layers=2, mlp_dim=512, block_len=128)
    cfg.data.update(seq_len=1024, batch_size=8)
    cfg.train.update(steps=400, lr=2e-3, warmup_steps=40, log_every=25, time_limit_minutes=25.0)
    cfg.checkpoint.update(every_steps=200, keep=1)
    cfg.evals.lm.update(max_tokens=32768, chunk_blocks=32)
  elif a.preset == "paper":
    cfg.model.update(vocab_size=32000, dtype="bfloat16", **paper_model)
    cfg.data.update(tokenizer="sentencepiece", tokenizer_path=a.tokenizer or PAPER_TOKENIZER)
    cfg.train.update(paper_train)
    cfg.checkpoint.update(every_steps=2000, keep=3)
    cfg.evals.lm.update(chunk_blocks=8)
  else:
    raise ValueError(f"unknown preset {a.preset!r}: expected smoke, cpu or paper")
  return cfg, a


def titans_lm_config(variant: str, arg: str):
  """Titans Table 1: `size=340m|400m|760m` (paper preset), `linear=True` (L_M = 1)."""
  a = config_lib.parse_arg(arg, preset="cpu", path="", heldout="", tokenizer="", size="340m",
                           linear=False)
  if a.size not in TITANS_SIZES:
    raise ValueError(f"config argument size={a.size!r} is not one of {sorted(TITANS_SIZES)}")
  size = dict(TITANS_SIZES[a.size])
  steps = size.pop("steps")
  cfg, a = lm_config("titans", arg, dict(block_len=512, **size),
                     dict(steps=steps, lr=4e-4, warmup_steps=1000, weight_decay=0.1, b2=0.95),
                     size="340m", linear=False)
  cfg.model.titans.variant = variant
  if a.linear:
    cfg.model.titans.memory_depth = 1
  if a.preset == "smoke":
    cfg.model.titans.chunk_size = 8
  elif a.preset == "paper":
    cfg.data.update(seq_len=4096, batch_size=128)
  return cfg
