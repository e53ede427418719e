"""Full causal attention on the passkey task: the quadratic baseline (no memory; the whole prompt is
one block). Evaluation lengths are capped where the attention matrix fits.

  python -m longctx.main --config=configs/passkey/full.py:cpu --workdir=/tmp/passkey_full

Presets: smoke | cpu | paper.
"""
from longctx import config as config_lib

passkey_config = config_lib.load_common(__file__).passkey_config


def get_config(arg="cpu"):
  cfg = passkey_config("full", arg)
  ev = cfg.evals.passkey
  # Quadratic memory: the attention matrix of one layer at 16K tokens is 4 GiB in float32.
  ev.lengths = tuple(n for n in ev.lengths if n <= 16384)
  return config_lib.finalize(cfg)
