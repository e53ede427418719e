"""infinity-former language modelling on PG19 / a local corpus (infinity-former arXiv 2109.00301:
GPT-2 fine-tuned on PG19 with sticky memories, test perplexity 32.48; here trained from scratch on
Infini Table 2's shared setup).

  python -m longctx.main --config=configs/pg19/infinity_former.py:cpu --workdir=runs/pg19_inftyformer

Presets: smoke | cpu | paper (configs/pg19/common.py). Long-term memory as the official GPT-2 config
(papers.md 4(b)): 512 basis functions of widths 0.005 / 0.01, ridge lambda 0.5, tau 0.5, sticky
memories over 128 bins; the short-term memory is one block. The cpu and smoke presets scale the
basis with the block.
"""
from longctx import config as config_lib

_common = config_lib.load_common(__file__)
text_config, text_arg = _common.text_config, _common.text_arg


def get_config(arg="cpu"):
  cfg = text_config("infinity_former", arg)
  preset = text_arg(arg).preset
  inf = cfg.model.infinity_former
  inf.update(stm_blocks=1, ridge_lambda=0.5, tau=0.5, sticky=True)
  if preset == "smoke":
    inf.update(num_basis=16, basis_widths=(0.05, 0.1), num_samples=16, num_bins=8)
  elif preset == "cpu":
    inf.update(num_basis=128, basis_widths=(0.01, 0.05), num_samples=128, num_bins=64)
  else:
    inf.update(num_basis=512, basis_widths=(0.005, 0.01), num_samples=512, num_bins=128)
  return config_lib.finalize(cfg)
