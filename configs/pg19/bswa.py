"""Block sliding-window attention (one cached block, gradients into the cache) language modelling on
PG19 / a local corpus: the memory-less baseline of TransformerFAM (arXiv 2404.09173, Table 11's
PG-19 row, BSWA M1 46.4 next-token accuracy at 1B).

  python -m longctx.main --config=configs/pg19/bswa.py:cpu --workdir=runs/pg19_bswa

Presets: smoke | cpu | paper (configs/pg19/common.py).
"""
from longctx import config as config_lib

text_config = config_lib.load_common(__file__).text_config


def get_config(arg="cpu"):
  cfg = text_config("bswa", arg)
  cfg.model.bswa.mem_blocks = 1
  return config_lib.finalize(cfg)
