"""Infini-attention language modelling on PG19 / a local corpus (Infini-attention arXiv 2404.07143,
Table 2: PG19 token perplexity 9.65 Linear, 9.67 Linear+Delta; Transformer-XL 11.88).

  python -m longctx.main --config=configs/pg19/infini.py:cpu --workdir=runs/pg19_infini
  python -m longctx.main --config=configs/pg19/infini.py:paper --workdir=/tmp/p --config.train.compile_only=True

Presets: smoke | cpu | paper (configs/pg19/common.py). Linear + Delta:
  --config.model.infini.update_rule=linear_delta
"""
import os
import sys

# configs/ on the path and the package-qualified name: every task folder has its own common.py.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pg19.common import text_config  # noqa: E402

from longctx import config as config_lib  # noqa: E402


def get_config(arg="cpu"):
  return config_lib.finalize(text_config("infini", arg))
