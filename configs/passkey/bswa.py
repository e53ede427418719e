"""Block sliding-window attention (TransformerFAM arXiv 2404.09173 eq. 1) on the passkey task: the
baseline of Infini Table 3 / FAM Fig. 3a. Expected near chance once the key lies beyond the window
of (mem_blocks + 1) blocks per layer.

  python -m longctx.main --config=configs/passkey/bswa.py:cpu --workdir=/tmp/passkey_bswa

Presets: smoke | cpu | paper. Memory blocks: --config.model.bswa.mem_blocks=2 (M2);
stop-gradient cache (M1_SG): --config.model.bswa.stop_grad=True.
"""
from longctx import config as config_lib

passkey_config = config_lib.load_common(__file__).passkey_config


def get_config(arg="cpu"):
  cfg = passkey_config("bswa", arg)
  cfg.model.bswa.mem_blocks = 1
  return config_lib.finalize(cfg)
