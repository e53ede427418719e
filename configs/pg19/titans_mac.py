"""Titans MAC language modelling on PG19 / a local corpus (Titans arXiv 2501.00663, Table 1 trains
on FineWeb-Edu; here on Infini Table 2's shared PG19 setup so the memories compare on one table).

  python -m longctx.main --config=configs/pg19/titans_mac.py:cpu --workdir=runs/pg19_titans_mac

Presets: smoke | cpu | paper (configs/pg19/common.py). A MAC segment is one block; the memory is the
model default (depth 2, chunks of 16, 4 persistent tokens); smoke uses chunks of 8 (blocks of 16).
Slow on CPU (experiments/titans/README.md: 17.5x infini's step time at the bench shape).
"""
from longctx import config as config_lib

_common = config_lib.load_common(__file__)
text_config, text_arg = _common.text_config, _common.text_arg


def get_config(arg="cpu"):
  cfg = text_config("titans", arg)
  cfg.model.titans.variant = "mac"
  if text_arg(arg).preset == "smoke":
    cfg.model.titans.chunk_size = 8
  return config_lib.finalize(cfg)
