"""Recurrent Memory Transformer language modelling on PG19 / a local corpus (Infini-attention arXiv
2404.07143, Table 2 baseline: PG19 token perplexity 13.27).

  python -m longctx.main --config=configs/pg19/rmt.py:cpu --workdir=runs/pg19_rmt

Presets: smoke | cpu | paper (configs/pg19/common.py); memory tokens per block: 4 | 16 | 100.
"""
from longctx import config as config_lib

_common = config_lib.load_common(__file__)
text_config, text_arg = _common.text_config, _common.text_arg


def get_config(arg="cpu"):
  cfg = text_config("rmt", arg)
  preset = text_arg(arg).preset
  cfg.model.rmt.num_tokens = {"smoke": 4, "cpu": 16, "paper": 100}[preset]
  return config_lib.finalize(cfg)
