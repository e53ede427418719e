"""bswa on S-NIAH: a comparator for the Titans variants (same presets, configs/niah/common.py).

  python -m longctx.main --config=configs/niah/bswa.py:cpu --workdir=runs/niah_bswa

Not a Titans table row; it places the Titans grid beside a local-attention baseline trained the
same way.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import niah_config  # noqa: E402

from longctx import config as config_lib  # noqa: E402


def get_config(arg="cpu"):
  return config_lib.finalize(niah_config("bswa", arg))
