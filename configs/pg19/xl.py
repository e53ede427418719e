"""Transformer-XL language modelling on PG19 / a local corpus (Infini-attention Table 2 baseline:
XL cache 2048 = one cached segment, PG19 token perplexity 11.88).

  python -m longctx.main --config=configs/pg19/xl.py:cpu --workdir=runs/pg19_xl

Presets: smoke | cpu | paper (configs/pg19/common.py).
"""
from longctx import config as config_lib

text_config = config_lib.load_common(__file__).text_config


def get_config(arg="cpu"):
  cfg = text_config("xl", arg)
  cfg.model.xl.mem_blocks = 1   # cache = one segment (2048 tokens at paper scale)
  return config_lib.finalize(cfg)
