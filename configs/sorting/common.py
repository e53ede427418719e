"""Shared presets of the sorting configs (infinity-former arXiv 2109.00301, Sec. 4.1; configs/sorting/
<arch>.py import this). Arguments: a preset word and optionally `length=N` (input tokens per
document, N - 20 symbols; sets data.seq_len and the evaluated length), e.g. `cpu,length=2048`.

Presets: `smoke` (seconds, tests), `cpu` (a scaled-down run on 2 cores: STM = segment = 128 tokens,
lengths 1K/2K/4K instead of 4K/8K/16K), `paper` (official run_sort_inftyformer.sh: 3 layers,
d_model 300, 6 heads x 50, d_inner 300, segment = STM = 1024, basis 512, tau 0.75, Adam 2e-4,
20k steps, batch 8; build and compile only here). The official run also switches on a KL
regulariser and a learned gate on the written vectors (neither in the paper; both off here by
default): `--config.model.infinity_former.kl_weight=1e-6 --config.model.infinity_former.write_mask=True`.
"""
from longctx import config as config_lib
from longctx.data import sorting

DEFAULT_LENGTH = {"smoke": 128, "cpu": 1024, "paper": 8192}


def sorting_config(attention: str, arg: str):
  a = config_lib.parse_arg(arg, preset="cpu", length=0)
  if a.preset not in DEFAULT_LENGTH:
    raise ValueError(f"unknown preset {a.preset!r}: expected smoke, cpu or paper")
  length = a.length or DEFAULT_LENGTH[a.preset]
  cfg = config_lib.base_config()
  cfg.model.attention = attention
  cfg.model.vocab_size = sorting.VOCAB_SIZE
  cfg.data.task = "sorting"
  cfg.evals.run = ("sorting",)
  ev = cfg.evals.sorting
  inf = cfg.model.infinity_former
  if a.preset == "smoke":
    cfg.model.update(d_model=32, num_heads=2, num_layers=2, mlp_dim=64, block_len=32)
    inf.update(num_basis=32, basis_widths=(0.03, 0.1), num_samples=32, num_bins=16)
    cfg.data.update(batch_size=2)
    cfg.train.update(steps=10, lr=3e-3, warmup_steps=2, log_every=5)
    cfg.checkpoint.update(every_steps=10, keep=1)
    ev.update(samples=2, batch_size=2, chunk_blocks=4)
  elif a.preset == "cpu":
    # A 2-layer d64 model; STM = segment = 128 tokens; the LTM scaled with it (basis 128, M 128).
    cfg.model.update(d_model=64, num_heads=4, num_layers=2, mlp_dim=128, block_len=128)
    inf.update(num_basis=128, basis_widths=(0.01, 0.05), num_samples=128, num_bins=64)
    cfg.data.update(batch_size=8)
    cfg.train.update(steps=300, lr=2e-3, warmup_steps=20, log_every=25, grad_clip=0.25,
                     time_limit_minutes=6.0)
    cfg.checkpoint.update(every_steps=100, keep=1)
    ev.update(samples=64, batch_size=32, chunk_blocks=8)
  else:
    cfg.model.update(d_model=300, num_heads=6, num_layers=3, mlp_dim=300, block_len=1024)
    inf.update(stm_blocks=1, num_basis=512, basis_widths=(0.01, 0.05), ridge_lambda=1.0, tau=0.75,
               num_samples=512)
    cfg.data.update(batch_size=8)
    cfg.train.update(steps=20000, lr=2e-4, warmup_steps=0, b1=0.9, b2=0.999, grad_clip=0.25,
                     min_lr_ratio=0.0, log_every=200)
    ev.update(samples=800, batch_size=8, chunk_blocks=4)
  cfg.model.xl.mem_blocks = inf.stm_blocks  # Transformer-XL gets the same short-term memory
  cfg.data.seq_len = length
  ev.lengths = (length,)
  return cfg
