"""Compressive Transformer language modelling on PG19 / a local corpus (Rae et al. 2020, the
benchmark that introduced PG19; a baseline family of Infini-attention Table 2).

  python -m longctx.main --config=configs/pg19/compressive.py:cpu --workdir=runs/pg19_compressive

Presets: smoke | cpu | paper (configs/pg19/common.py). An XL cache of one block plus a compressed
memory of one block's length at rate 2 (the Compressive Transformer's PG19 rate is 2).
"""
from longctx import config as config_lib

text_config = config_lib.load_common(__file__).text_config


def get_config(arg="cpu"):
  cfg = text_config("compressive", arg)
  cfg.model.xl.mem_blocks = 1
  cfg.model.compressive.update(compressed_len=cfg.model.block_len, rate=2, recon_weight=1.0)
  return config_lib.finalize(cfg)
