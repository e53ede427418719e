"""Memorizing Transformer (kNN memory of past keys/values, Wu et al. 2022) on the passkey task; the
Memorizing baseline of Infini-attention Tables 1-2 (2048 XL cache + 65K kNN memory on one layer).

  python -m longctx.main --config=configs/passkey/memorizing.py:cpu --workdir=/tmp/passkey_memorizing

Presets: smoke | cpu | paper (see configs/passkey/common.py). The kNN memory sits on one layer at
about 3/4 depth, as the paper's layer 9 of 12 (model.memorizing.layers, 0-based); the other layers
are Transformer-XL layers with model.xl.mem_blocks cached blocks. Exact top-k; on TPU
--config.model.memorizing.approximate=True uses lax.approx_max_k.
"""
from longctx import config as config_lib

passkey_config = config_lib.load_common(__file__).passkey_config


def get_config(arg="cpu"):
  cfg = passkey_config("memorizing", arg)
  preset = config_lib.parse_arg(arg, preset="cpu").preset
  mc = cfg.model.memorizing
  cfg.model.xl.mem_blocks = 1
  if preset == "smoke":  # 2 layers, block 32: 4 blocks of memory on the last layer
    mc.update(capacity=128, top_k=8, layers=(1,))
  elif preset == "cpu":  # 3 layers, block 128: the whole 2K training prompt fits the memory
    mc.update(capacity=2048, top_k=32, layers=(1,))
  else:  # paper: 16 layers, block 2048; 65,536 pairs (the paper's "65K") on layer 12 of 16
    mc.update(capacity=65536, top_k=32, layers=(11,))
  return config_lib.finalize(cfg)
