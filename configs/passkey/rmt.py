"""Recurrent Memory Transformer (Bulatov et al. 2022: memory tokens read at the start and written at
the end of each block) on the passkey task; the RMT baseline of Infini-attention Table 2 and FAM
(which reports RMT failing passkey at long filler).

  python -m longctx.main --config=configs/passkey/rmt.py:cpu --workdir=/tmp/passkey_rmt

Presets: smoke | cpu | paper (see configs/passkey/common.py). paper: 100 memory tokens per 2048
block, Infini's best RMT setting (papers.md 3(b)). Gradients flow through every block of a training
sequence; --config.model.bptt_blocks=k truncates them every k blocks (the paper's unroll depth).
"""
from longctx import config as config_lib

passkey_config = config_lib.load_common(__file__).passkey_config


def get_config(arg="cpu"):
  cfg = passkey_config("rmt", arg)
  preset = config_lib.parse_arg(arg, preset="cpu").preset
  cfg.model.rmt.num_tokens = {"smoke": 4, "cpu": 16, "paper": 100}[preset]
  return config_lib.finalize(cfg)
