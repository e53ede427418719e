"""Transformer-XL (stop-gradient cache of the previous block) on the passkey task; the XL baseline
of Infini Table 2 and FAM Table 8.

  python -m longctx.main --config=configs/passkey/xl.py:cpu --workdir=/tmp/passkey_xl

Presets: smoke | cpu | paper.
"""
from longctx import config as config_lib

passkey_config = config_lib.load_common(__file__).passkey_config


def get_config(arg="cpu"):
  cfg = passkey_config("xl", arg)
  return config_lib.finalize(cfg)
