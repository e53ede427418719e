"""bswa on S-NIAH: a comparator for the Titans variants (same presets, configs/niah/common.py).

  python -m longctx.main --config=configs/niah/bswa.py:cpu --workdir=runs/niah_bswa

Not a Titans table row; it places the Titans grid beside a local-attention baseline trained the
same way.
"""

from longctx import config as config_lib

niah_config = config_lib.load_common(__file__).niah_config


def get_config(arg="cpu"):
  return config_lib.finalize(niah_config("bswa", arg))
