"""Transformer-XL language modelling on PG19 / a local corpus (Infini-attention Table 2 baseline:
XL cache 2048 = one cached segment, PG19 token perplexity 11.88).

  python -m longctx.main --config=configs/pg19/xl.py:cpu --workdir=runs/pg19_xl

Presets: smoke | cpu | paper (configs/pg19/common.py).
"""
import os
import sys

# configs/ on the path and the package-qualified name: every task folder has its own common.py.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pg19.common import text_config  # noqa: E402

from longctx import config as config_lib  # noqa: E402


def get_config(arg="cpu"):
  cfg = text_config("xl", arg)
  cfg.model.xl.mem_blocks = 1   # cache = one segment (2048 tokens at paper scale)
  return config_lib.finalize(cfg)
