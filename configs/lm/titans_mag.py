"""Titans (MAG) language model at the paper's scales (Titans arXiv 2501.00663, Table 1).

  python -m longctx.main --config=configs/lm/titans_mag.py:paper,size=340m --workdir=/tmp/lm --config.train.compile_only=True

Presets smoke | cpu | paper with size=340m|400m|760m (configs/lm/common.py: the text task on a local
corpus; paper: your own corpus and a 32K SentencePiece model). Table 1 targets (Wiki ppl / LMB ppl / avg acc): see papers.md 2(c), e.g.
340M MAC 25.43/28.13/47.36, MAG 25.07/28.72/47.54, MAL 24.69/28.80/46.55, LMM 26.18/29.97/46.17.
"""

from longctx import config as config_lib

titans_lm_config = config_lib.load_common(__file__).titans_lm_config


def get_config(arg="cpu"):
  return config_lib.finalize(titans_lm_config("mag", arg))
