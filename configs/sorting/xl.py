"""Transformer-XL (stop-gradient cache of the previous block, the same short-term memory as the
infinity-former config) on the sorting task: the baseline of infinity-former (arXiv 2109.00301)
Sec. 4.1.

  python -m longctx.main --config=configs/sorting/xl.py:cpu,length=2048 --workdir=/tmp/sort_xl

Presets: smoke | cpu | paper (configs/sorting/common.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import sorting_config  # noqa: E402

from longctx import config as config_lib  # noqa: E402


def get_config(arg="cpu"):
  return config_lib.finalize(sorting_config("xl", arg))
