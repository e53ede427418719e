"""Memorizing Transformer language modelling on PG19 / a local corpus (Infini-attention arXiv
2404.07143, Table 2 baseline: a 65K-pair kNN memory, PG19 token perplexity 11.37).

  python -m longctx.main --config=configs/pg19/memorizing.py:cpu --workdir=runs/pg19_memorizing

Presets: smoke | cpu | paper (configs/pg19/common.py). The kNN memory sits on one layer, the 9th of
12 at paper scale (Memorizing Transformers' choice), the last of the cpu model's 2; an XL cache of
one block on every layer, as in the paper.
"""
from longctx import config as config_lib

_common = config_lib.load_common(__file__)
text_config, text_arg = _common.text_config, _common.text_arg


def get_config(arg="cpu"):
  cfg = text_config("memorizing", arg)
  preset = text_arg(arg).preset
  cfg.model.xl.mem_blocks = 1
  mc = cfg.model.memorizing
  if preset == "smoke":    # 1 layer, blocks of 16: 4 blocks of memory
    mc.update(capacity=64, top_k=8, layers=(0,))
  elif preset == "cpu":    # 2 layers, blocks of 128: 4K pairs = four 1K-token training sequences
    mc.update(capacity=4096, top_k=32, layers=(1,))
  else:                    # paper: 65,536 pairs on layer 9 of 12
    mc.update(capacity=65536, top_k=32, layers=(8,))
  return config_lib.finalize(cfg)
