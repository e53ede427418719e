"""Transformer-XL (stop-gradient cache of the previous block) on the passkey task; the XL baseline
of Infini Table 2 and FAM Table 8.

  python -m longctx.main --config=configs/passkey/xl.py:cpu --workdir=/tmp/passkey_xl

Presets: smoke | cpu | paper.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import passkey_config  # noqa: E402

from longctx import config as config_lib  # noqa: E402


def get_config(arg="cpu"):
  cfg = passkey_config("xl", arg)
  return config_lib.finalize(cfg)
