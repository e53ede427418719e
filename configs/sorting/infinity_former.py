"""infinity-former on the sorting task (Martins et al., arXiv 2109.00301, Sec. 4.1 / Fig. on sorting
accuracy vs length): target, infinity-former's accuracy falls more slowly with length than
Transformer-XL's with the same short-term memory; sticky memories at least as good as uniform.

  python -m longctx.main --config=configs/sorting/infinity_former.py:cpu,length=2048 --workdir=/tmp/sort_inf
  python -m longctx.main --config=configs/sorting/infinity_former.py:cpu --workdir=/tmp/sort_inf_sm \
      --config.model.infinity_former.sticky=True

Presets: smoke | cpu | paper (configs/sorting/common.py). Off by default, on in the official
config, not in the paper: the KL regulariser (`kl_weight`) and the CNN gate on the vectors written
to the memory (`write_mask`); see longctx/layers/infinity_former.py.
"""

from longctx import config as config_lib

sorting_config = config_lib.load_common(__file__).sorting_config


def get_config(arg="cpu"):
  return config_lib.finalize(sorting_config("infinity_former", arg))
