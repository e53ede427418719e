"""Infini-attention on the passkey task (Infini-attention arXiv 2404.07143, Table 3).

  python -m longctx.main --config=configs/passkey/infini.py:cpu --workdir=/tmp/passkey_infini

Presets: smoke | cpu | paper (see configs/passkey/common.py). Targets Table 3's fine-tuned rows:
94-100% token accuracy at start/middle/end up to 1M tokens. The `cpu` preset uses the delta rule
(`linear_delta`, the rule of experiments/infini-attention attempts 4-6); the others use `linear`.
Either rule by override: --config.model.infini.update_rule=linear
"""
from longctx import config as config_lib

passkey_config = config_lib.load_common(__file__).passkey_config


def get_config(arg="cpu"):
  cfg = passkey_config("infini", arg)
  if config_lib.parse_arg(arg, preset="cpu").preset == "cpu":
    # Decision: the delta rule on CPU. The filler repeats, and the delta rule writes only what the
    # memory cannot already retrieve, so 8K blocks of filler do not pile up in M (papers.md 3).
    cfg.model.infini.update_rule = "linear_delta"
  return config_lib.finalize(cfg)
