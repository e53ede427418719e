"""Every config file builds, validates and locks for every preset; the paper preset compiles."""
import glob
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(f for f in glob.glob(os.path.join(ROOT, "configs", "*", "*.py"))
                      if os.path.basename(f) != "common.py")


def _load(path):
  spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_builds_every_preset(path):
  module = _load(path)
  assert "python" in (module.__doc__ or ""), "the docstring must give the launch command"
  for preset in ("smoke", "cpu") + (("paper",) if "passkey" in path else ()):
    cfg = module.get_config(preset)
    assert cfg.is_locked
    with pytest.raises(AttributeError):
      cfg.model.not_a_field = 1


def test_unknown_preset_is_refused():
  module = _load(os.path.join(ROOT, "configs", "passkey", "infini.py"))
  with pytest.raises(ValueError, match="preset"):
    module.get_config("tiny")


@pytest.mark.slow
def test_paper_preset_compiles(tmp_path):
  from longctx import train
  cfg = _load(os.path.join(ROOT, "configs", "passkey", "infini.py")).get_config("paper")
  cfg.unlock()
  cfg.train.compile_only = True
  result = train.train_and_evaluate(cfg, str(tmp_path))
  assert result["compiled"] and 1.0e9 < result["parameters"] < 1.2e9
