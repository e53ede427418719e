"""Bad input fails when the config is built, with a message naming the field; built configs lock."""
import pytest

from longctx.config import base_config, finalize, validate


def test_base_config_finalizes_and_locks():
  cfg = finalize(base_config())
  assert cfg.is_locked
  cfg.model.d_model = 128  # existing fields stay settable
  for section in (cfg, cfg.model, cfg.model.infini, cfg.data):
    with pytest.raises(AttributeError, match="locked"):
      section.not_a_field = 1
  with pytest.raises(AttributeError):
    cfg.model.d_modle = 128  # a typo fails instead of adding a field


def _bad(**changes):
  """base_config() with dotted-path changes, e.g. _bad(**{'model.d_model': 250})."""
  cfg = base_config()
  for path, value in changes.items():
    *parents, leaf = path.split(".")
    node = cfg
    for p in parents:
      node = node[p]
    node[leaf] = value
  return cfg


@pytest.mark.parametrize("changes,field", [
    ({"data.seq_len": 4097}, "data.seq_len"),                       # not a multiple of block_len
    ({"data.seq_len": 1000, "model.block_len": 64}, "data.seq_len"),
    ({"model.attention": "flash"}, "model.attention"),
    ({"model.d_model": 250}, "model.d_model"),                      # 250 % 4 heads != 0
    ({"model.d_model": 12, "model.num_heads": 4}, "model.d_model"),  # head dim 3 is odd (RoPE)
    ({"model.infini.update_rule": "hebbian"}, "model.infini.update_rule"),
    ({"model.remat_policy": "sometimes"}, "model.remat_policy"),
    ({"model.fam.fam_len": -1}, "model.fam.fam_len"),
    ({"model.fam.mem_blocks": -2}, "model.fam.mem_blocks"),
    ({"train.state_passing_prob": 1.5}, "train.state_passing_prob"),
    ({"train.init_from_step": -2}, "train.init_from_step"),
    ({"train.ema_decay": 1.0}, "train.ema_decay"),
    ({"train.ema_decay": -0.1}, "train.ema_decay"),
    ({"data.filler_weight_max": 0.5}, "data.filler_weight_max"),
    ({"data.filler_weight_max": 8.0, "model.attention": "bswa"}, "data.filler_weight_max"),
    ({"data.filler_weight_max": 8.0, "data.task": "niah"}, "data.filler_weight_max"),
    ({"data.filler_weight_schedule": ((100, 0.5),)}, "data.filler_weight_schedule[0]"),
    ({"data.filler_weight_schedule": ((100, 8.0), (50, 2.0))}, "data.filler_weight_schedule[1]"),
    ({"data.filler_weight_schedule": ((100,),)}, "data.filler_weight_schedule[0]"),
    ({"data.filler_weight_schedule": ((100, 8.0),), "model.attention": "bswa"},
     "data.filler_weight_schedule"),
    ({"data.random_filler_phase": True, "data.task": "sorting"}, "data.random_filler_phase"),
    ({"data.cut_key_prob": 1.5}, "data.cut_key_prob"),
    ({"data.end_depth_prob": -0.1}, "data.end_depth_prob"),
    ({"data.random_filler_phase": True, "data.task": "niah", "data.niah.haystack": "files",
      "data.niah.files": ("essays.txt",)}, "data.niah.haystack='files'"),
    ({"data.seq_len_schedule": ((100, 1000),)}, "data.seq_len_schedule[0]"),   # not a block multiple
    ({"data.seq_len_schedule": ((100, 8192), (100, 16384))}, "data.seq_len_schedule[1]"),
    ({"data.seq_len_schedule": ((0, 8192),)}, "data.seq_len_schedule[0]"),     # step 0: use seq_len
    ({"data.seq_len_schedule": ((100,),)}, "data.seq_len_schedule[0]"),
    ({"data.seq_len_schedule": ((100, 8192),), "data.task": "text"}, "data.seq_len_schedule"),
    ({"data.seq_len_schedule": ((100, 16),), "data.task": "sorting", "model.block_len": 16,
      "model.vocab_size": 32, "data.seq_len": 64}, "data.seq_len_schedule[0]"),  # no room for the answer
])
def test_bad_field_is_named_when_built(changes, field):
  cfg = _bad(**changes)
  with pytest.raises(ValueError) as excinfo:
    finalize(cfg)
  assert field in str(excinfo.value), str(excinfo.value)
  assert not cfg.is_locked  # nothing half-built escapes


def test_the_checks_are_not_vacuous():
  """The values the bad cases start from are fine, and `full` has no block constraint."""
  validate(base_config())
  validate(_bad(**{"model.block_len": 64, "data.seq_len": 1024}))
  validate(_bad(**{"model.attention": "full", "data.seq_len": 1000}))
  validate(_bad(**{"model.d_model": 252, "model.num_heads": 6}))  # head dim 42, even
  validate(_bad(**{"data.seq_len_schedule": ((100, 8192), (200, 16384))}))
  validate(_bad(**{"data.random_filler_phase": True, "data.task": "niah"}))  # noise haystack
  validate(_bad(**{"data.filler_weight_schedule": ((100, 2048.0), (200, 512))}))
  validate(_bad(**{"data.filler_weight_max": 8.0}))   # passkey + infini: the base config's
  validate(_bad(**{"data.cut_key_prob": 1.0, "data.end_depth_prob": 1.0}))
