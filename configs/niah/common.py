"""Shared presets of the S-NIAH configs (configs/niah/<arch>.py import this).

Presets: `smoke` (tiny, seconds, used by tests), `cpu` (a real run of <= 30 minutes on 2 cores:
trained at N = 512 tokens, evaluated at 1x-4x N), `paper` (Titans Table 2's setting: trained at
4K, evaluated 2K-16K; build/compile only). Argument: `linear=True` makes the Titans memory a linear
matrix (L_M = 1, the "linear memory" ablation of Table 5), e.g. configs/niah/titans_lmm.py:cpu,linear=True.
"""
from longctx import config as config_lib

LENGTHS_CPU = (512, 1024, 2048)


def niah_config(attention: str, arg: str, variant: str = "mac"):
  a = config_lib.parse_arg(arg, preset="cpu", linear=False)
  cfg = config_lib.base_config()
  cfg.model.attention = attention
  cfg.model.titans.variant = variant
  if a.linear:
    cfg.model.titans.memory_depth = 1
  cfg.data.task = "niah"
  cfg.evals.run = ("niah",)
  ev = cfg.evals.niah
  if a.preset == "smoke":
    cfg.model.update(d_model=64, num_heads=4, num_layers=2, mlp_dim=128, block_len=32)
    cfg.model.titans.update(chunk_size=8)
    cfg.data.update(seq_len=512, batch_size=2)
    cfg.data.niah.digits = 3
    cfg.train.update(steps=4, lr=3e-3, warmup_steps=2, log_every=2)
    cfg.checkpoint.update(every_steps=4, keep=1)
    ev.update(lengths=(512, 1024), depths=(0.0, 1.0), samples=1, digits=3, chunk_blocks=8)
  elif a.preset == "cpu":
    # A 2-layer d128 byte model, blocks (MAC segments) of 64, memory chunks of 16, trained at
    # N = 512 tokens on passkey needles in the noise haystack, evaluated at 1x-4x N. The recipe of
    # the passkey experiments (loss on the answer only, lr 1e-3, batch 16): with the loss on every
    # token and N = 1,024 no model left chance in 400 steps (experiments/titans/README.md); MAC
    # takes ~18 minutes here. Number and word needles: data.niah.needles / evals.niah.needles.
    cfg.model.update(d_model=128, num_heads=4, num_layers=2, mlp_dim=384, block_len=64,
                     remat_policy="nothing_saveable")
    cfg.model.titans.update(chunk_size=16)
    cfg.data.update(seq_len=512, batch_size=16, other_weight=0.0)
    cfg.data.niah.update(digits=5, needles=("passkey",))
    cfg.train.update(steps=600, lr=1e-3, warmup_steps=50, log_every=25, time_limit_minutes=30.0)
    cfg.checkpoint.update(every_steps=100, keep=2)
    ev.update(lengths=LENGTHS_CPU, depths=(0.0, 0.5, 1.0), samples=8, digits=5, chunk_blocks=16,
              needles=("passkey",))
  elif a.preset == "paper":
    # Table 2: models trained at 4K, S-NIAH at 2K-16K. The paper does not say which scale; we take
    # the 340M shape of configs/lm (24 layers, d_model 1024, 16 heads of 64), segments of 512 and
    # memory chunks of 16 (both unstated). RULER samples 500 needles per cell; we take 100.
    cfg.model.update(d_model=1024, num_heads=16, num_layers=24, mlp_dim=2816, block_len=512,
                     dtype="bfloat16")
    cfg.data.update(seq_len=4096, batch_size=128)
    cfg.train.update(steps=1000, lr=4e-4, warmup_steps=100, weight_decay=0.1)
    ev.update(lengths=(2048, 4096, 8192, 16384), depths=tuple(i / 10 for i in range(11)),
              samples=100, chunk_blocks=8)
  else:
    raise ValueError(f"unknown preset {a.preset!r}: expected smoke, cpu or paper")
  return cfg
