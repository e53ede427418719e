"""Infini-attention on the passkey task (Infini-attention arXiv 2404.07143, Table 3).

  python -m longctx.main --config=configs/passkey/infini.py:cpu --workdir=/tmp/passkey_infini

Presets: smoke | cpu | paper (see configs/passkey/common.py). Targets Table 3's fine-tuned rows:
94-100% token accuracy at start/middle/end up to 1M tokens. `linear_delta` selects the delta rule:
  --config=configs/passkey/infini.py:cpu --config.model.infini.update_rule=linear_delta
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import passkey_config  # noqa: E402

from longctx import config as config_lib  # noqa: E402


def get_config(arg="cpu"):
  cfg = passkey_config("infini", arg)
  return config_lib.finalize(cfg)
