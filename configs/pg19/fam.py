"""TransformerFAM language modelling on PG19 / a local corpus (TransformerFAM arXiv 2404.09173
evaluates long-context LM on PG19, Table 10-14 setups; here on Infini Table 2's shared setup).

  python -m longctx.main --config=configs/pg19/fam.py:cpu --workdir=runs/pg19_fam

Presets: smoke | cpu | paper (configs/pg19/common.py). FAM length L_F = block / 16 (the paper's
64 / 1024) and one cached block (Infini Table 2's XL cache of one segment), random position offset
and random state passing (p 0.8) on, as the paper trains.
"""
from longctx import config as config_lib

text_config = config_lib.load_common(__file__).text_config


def get_config(arg="cpu"):
  cfg = text_config("fam", arg)
  cfg.model.fam.update(fam_len=max(cfg.model.block_len // 16, 1), mem_blocks=1)
  cfg.train.update(random_position_offset=True, state_passing_prob=0.8)
  return config_lib.finalize(cfg)
