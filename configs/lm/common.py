"""Shared presets of the Titans language-modelling configs (Titans arXiv 2501.00663, Table 1).

TODO(text task): the LM text task (`data.task='text'`, FineWeb-Edu / local files, Llama-2 32K
sentencepiece vocabulary) is being built on another branch. Until it lands these configs train on
the S-NIAH task (byte tokens) so that every preset builds and the paper preset compiles at the
paper's size; switching to `data.task='text'` and the 32K tokenizer is the only change left.

Argument: `size=340m|400m|760m` (paper preset) and `linear=True` (L_M = 1).
Table 1 does not give layer counts or widths (papers.md 2(b)); the shapes follow the Gated DeltaNet
recipe the paper copies its baselines from: 340M and 400M = 24 layers x d 1024 (400M: SwiGLU 4096
instead of 2816, the ~15% larger size class), 760M = 24 layers x d 1536; heads of 64.
Training (Sec. 5.1): 4K context, AdamW lr 4e-4 cosine, weight decay 0.1, 0.5M tokens per batch
(128 x 4096), 15B tokens (340M/400M, ~28.6K steps) or 30B (760M, ~57.2K steps).
"""
from longctx import config as config_lib

SIZES = {
    "340m": dict(d_model=1024, num_heads=16, num_layers=24, mlp_dim=2816, steps=28610),
    "400m": dict(d_model=1024, num_heads=16, num_layers=24, mlp_dim=4096, steps=28610),
    "760m": dict(d_model=1536, num_heads=24, num_layers=24, mlp_dim=4096, steps=57220),
}


def lm_config(variant: str, arg: str):
  a = config_lib.parse_arg(arg, preset="cpu", size="340m", linear=False)
  if a.size not in SIZES:
    raise ValueError(f"config argument size={a.size!r} is not one of {sorted(SIZES)}")
  cfg = config_lib.base_config()
  cfg.model.attention = "titans"
  cfg.model.titans.variant = variant
  if a.linear:
    cfg.model.titans.memory_depth = 1
  cfg.data.task = "niah"   # TODO(text task): 'text'
  cfg.evals.run = ("niah",)
  if a.preset == "smoke":
    cfg.model.update(d_model=64, num_heads=4, num_layers=2, mlp_dim=128, block_len=32)
    cfg.model.titans.chunk_size = 8
    cfg.data.update(seq_len=256, batch_size=2)
    cfg.data.niah.digits = 3
    cfg.train.update(steps=4, warmup_steps=2, log_every=2)
    cfg.evals.niah.update(lengths=(256,), depths=(0.5,), samples=1, digits=3, chunk_blocks=4)
  elif a.preset == "cpu":
    cfg.model.update(d_model=128, num_heads=4, num_layers=4, mlp_dim=384, block_len=128)
    cfg.data.update(seq_len=1024, batch_size=8, other_weight=1.0)
    cfg.train.update(steps=1000, lr=2e-3, warmup_steps=100, log_every=25, time_limit_minutes=30.0)
  elif a.preset == "paper":
    size = dict(SIZES[a.size])
    steps = size.pop("steps")
    cfg.model.update(vocab_size=32000, block_len=512, dtype="bfloat16", **size)
    cfg.data.update(seq_len=4096, batch_size=128, other_weight=1.0)
    cfg.train.update(steps=steps, lr=4e-4, warmup_steps=1000, weight_decay=0.1, b2=0.95)
  else:
    raise ValueError(f"unknown preset {a.preset!r}: expected smoke, cpu or paper")
  return cfg
