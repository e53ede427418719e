"""Titans (LMM) on S-NIAH (Titans arXiv 2501.00663, Table 2; Table 5 for the ablations).

  python -m longctx.main --config=configs/niah/titans_lmm.py:cpu --workdir=runs/niah_titans_lmm

Presets: smoke | cpu | paper (configs/niah/common.py). Table 2 targets at 2K/4K/8K/16K (PK, N, W):
MAC 99.2/98.8/99.0/98.4, 99.6/98.2/97.6/97.4, 98.2/98.2/95.6/95.2; MAG and MAL within a few points;
LMM 99.8/98.4/98.2/96.2, 100/99.8/93.4/80.2, 90.4/89.4/85.8/80.6. The bar: LMM at or above LMM,
LMM above its linear-memory ablation (configs/niah/titans_lmm.py:cpu,linear=True).
"""

from longctx import config as config_lib

niah_config = config_lib.load_common(__file__).niah_config


def get_config(arg="cpu"):
  return config_lib.finalize(niah_config("titans", arg, variant="lmm"))
