"""Transformer-XL (stop-gradient cache of the previous block, the same short-term memory as the
infinity-former config) on the sorting task: the baseline of infinity-former (arXiv 2109.00301)
Sec. 4.1.

  python -m longctx.main --config=configs/sorting/xl.py:cpu,length=2048 --workdir=/tmp/sort_xl

Presets: smoke | cpu | paper (configs/sorting/common.py).
"""

from longctx import config as config_lib

sorting_config = config_lib.load_common(__file__).sorting_config


def get_config(arg="cpu"):
  return config_lib.finalize(sorting_config("xl", arg))
