"""Full causal attention on the passkey task: the quadratic baseline (no memory; the whole prompt is
one block). Evaluation lengths are capped where the attention matrix fits.

  python -m longctx.main --config=configs/passkey/full.py:cpu --workdir=/tmp/passkey_full

Presets: smoke | cpu | paper.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import passkey_config  # noqa: E402

from longctx import config as config_lib  # noqa: E402


def get_config(arg="cpu"):
  cfg = passkey_config("full", arg)
  ev = cfg.evals.passkey
  # Quadratic memory: the attention matrix of one layer at 16K tokens is 4 GiB in float32.
  ev.lengths = tuple(n for n in ev.lengths if n <= 16384)
  return config_lib.finalize(cfg)
