"""Transformer-XL (stop-gradient cache of the previous block, the same short-term memory as the
infinity-former config) on the sorting task: the baseline of infinity-former (arXiv 2109.00301)
Sec. 4.1.

  python -m longctx.main --config=configs/sorting/xl.py:cpu,length=2048 --workdir=/tmp/sort_xl

Presets: smoke | cpu | paper (configs/sorting/common.py).
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
  return config_lib.finalize(sorting_config("xl", arg))
