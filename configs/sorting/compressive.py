"""Compressive Transformer (Rae et al. 2019) on the sorting task: the third model of infinity-former's
sorting comparison (arXiv 2109.00301 Sec. 4.1; qualitative result, papers.md 4(c): at long lengths
infinity-former >= Compressive > Transformer-XL).

  python -m longctx.main --config=configs/sorting/compressive.py:cpu,length=2048 --workdir=/tmp/sort_cmp

Presets: smoke | cpu | paper (configs/sorting/common.py). Decision (the paper does not give the
baseline's sizes): the same short-term memory as xl and infinity_former (model.xl.mem_blocks =
infinity_former.stm_blocks), and a compressed memory with as many slots as the infinity-former's
basis functions in the same preset (the LTM's size), at the Compressive Transformer's rate c = 2 and
reconstruction weight 1. An override of model.infinity_former.num_basis does not move
model.compressive.compressed_len: set both.
"""

from longctx import config as config_lib

sorting_config = config_lib.load_common(__file__).sorting_config


def get_config(arg="cpu"):
  cfg = sorting_config("compressive", arg)
  cfg.model.compressive.update(compressed_len=cfg.model.infinity_former.num_basis, rate=2,
                               recon_weight=1.0)
  return config_lib.finalize(cfg)
