"""Infini-attention on the passkey task (Infini-attention arXiv 2404.07143, Table 3).

  python -m longctx.main --config=configs/passkey/infini.py:cpu --workdir=/tmp/passkey_infini

Presets: smoke | cpu | paper (see configs/passkey/common.py). Targets Table 3's fine-tuned rows:
94-100% token accuracy at start/middle/end up to 1M tokens. `linear_delta` selects the delta rule:
  --config=configs/passkey/infini.py:cpu --config.model.infini.update_rule=linear_delta
"""
from longctx import config as config_lib

passkey_config = config_lib.load_common(__file__).passkey_config


def get_config(arg="cpu"):
  cfg = passkey_config("infini", arg)
  return config_lib.finalize(cfg)
