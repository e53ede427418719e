"""infinity-former on the sorting task (Martins et al., arXiv 2109.00301, Sec. 4.1 / Fig. on sorting
accuracy vs length): target, infinity-former's accuracy falls more slowly with length than
Transformer-XL's with the same short-term memory; sticky memories at least as good as uniform.

  python -m longctx.main --config=configs/sorting/infinity_former.py:cpu,length=2048 --workdir=/tmp/sort_inf
  python -m longctx.main --config=configs/sorting/infinity_former.py:cpu --workdir=/tmp/sort_inf_sm \
      --config.model.infinity_former.sticky=True

Presets: smoke | cpu | paper (configs/sorting/common.py). Not built from the official config: the
KL regulariser and the CNN mask over the memory vectors (see longctx/layers/infinity_former.py).
"""
import importlib.util
import os

from longctx import config as config_lib

# Loaded by path under its own name: a plain `import common` would pick up whichever configs/*/common.py
# was imported first in this process (configs/passkey/common.py has the same module name).
_spec = importlib.util.spec_from_file_location(
    "configs_sorting_common", os.path.join(os.path.dirname(os.path.abspath(__file__)), "common.py"))
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)
sorting_config = _common.sorting_config


def get_config(arg="cpu"):
  return config_lib.finalize(sorting_config("infinity_former", arg))
