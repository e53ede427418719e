"""Infini-attention language modelling on PG19 / a local corpus (Infini-attention arXiv 2404.07143,
Table 2: PG19 token perplexity 9.65 Linear, 9.67 Linear+Delta; Transformer-XL 11.88).

  python -m longctx.main --config=configs/pg19/infini.py:cpu --workdir=runs/pg19_infini
  python -m longctx.main --config=configs/pg19/infini.py:paper --workdir=/tmp/p --config.train.compile_only=True

Presets: smoke | cpu | paper (configs/pg19/common.py). Linear + Delta:
  --config.model.infini.update_rule=linear_delta
"""
from longctx import config as config_lib

text_config = config_lib.load_common(__file__).text_config


def get_config(arg="cpu"):
  return config_lib.finalize(text_config("infini", arg))
