"""Compressive Transformer (Rae et al. 2019: XL memory + conv-compressed memory, attention-
reconstruction loss) on the passkey task; a baseline of the Infini-attention/FAM comparisons.

  python -m longctx.main --config=configs/passkey/compressive.py:cpu --workdir=/tmp/passkey_compressive

Presets: smoke | cpu | paper (see configs/passkey/common.py). As the paper's best PG-19 setting
(n_s = n_m = n_cm, rate c = 2): one block of XL cache (model.xl.mem_blocks) and one block's worth of
compressed slots at rate 2; the reconstruction loss is added with weight 1.
"""
from longctx import config as config_lib

passkey_config = config_lib.load_common(__file__).passkey_config


def get_config(arg="cpu"):
  cfg = passkey_config("compressive", arg)
  cfg.model.xl.mem_blocks = 1
  cfg.model.compressive.update(compressed_len=cfg.model.block_len, rate=2, recon_weight=1.0)
  return config_lib.finalize(cfg)
