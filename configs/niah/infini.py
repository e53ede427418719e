"""infini on S-NIAH: a comparator for the Titans variants (same presets, configs/niah/common.py).

  python -m longctx.main --config=configs/niah/infini.py:cpu --workdir=runs/niah_infini

Not a Titans table row; it places the Titans grid beside a local-attention baseline trained the
same way.
"""
import importlib.util
import os

from longctx import config as config_lib

# Loaded by path under a unique name: several config folders have a common.py, and a plain
# `import common` would get whichever was imported first.
_spec = importlib.util.spec_from_file_location(
    "niah_common", os.path.join(os.path.dirname(__file__), "common.py"))
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)
niah_config = _common.niah_config


def get_config(arg="cpu"):
  return config_lib.finalize(niah_config("infini", arg))
