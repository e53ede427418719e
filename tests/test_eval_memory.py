"""scripts/eval_memory.py's model loader: a probe of a trained workdir must run the model that was
trained, so a config whose model differs from the workdir's config.json (in a field that changes no
parameter shape, like the update rule) stops with the field named instead of running silently."""
import json
import os
import sys

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SPEC = os.path.join(_ROOT, "configs", "passkey", "infini.py") + ":smoke"
sys.path.insert(0, os.path.join(_ROOT, "scripts"))
import eval_memory  # noqa: E402  (the probes import it the same way)


def _workdir_of(tmp_path, cfg, drop=()):
  record = json.loads(cfg.to_json())
  for field in drop:  # a field the workdir's run did not have yet
    record["model"]["infini"].pop(field)
  (tmp_path / "config.json").write_text(json.dumps(record))
  return str(tmp_path)


def test_a_model_field_that_differs_from_the_workdir_stops_with_its_name(tmp_path):
  trained = eval_memory.load_config(_SPEC)
  eval_memory.apply_overrides(trained, ["model.infini.update_rule=linear_delta"])
  workdir = _workdir_of(tmp_path, trained)
  probe = eval_memory.load_config(_SPEC)
  assert probe.model.infini.update_rule != "linear_delta"
  with pytest.raises(SystemExit, match=r"model\.infini\.update_rule trained 'linear_delta'.*"
                                       r"--set model\.infini\.update_rule='linear_delta'"):
    eval_memory.check_model_matches_workdir(probe, workdir)
  eval_memory.apply_overrides(probe, ["model.infini.update_rule=linear_delta"])
  eval_memory.check_model_matches_workdir(probe, workdir)  # as trained: no error


def test_fields_newer_than_the_run_and_workdirs_without_a_record_are_not_checked(tmp_path):
  cfg = eval_memory.load_config(_SPEC)
  eval_memory.check_model_matches_workdir(cfg, str(tmp_path))  # no config.json
  eval_memory.check_model_matches_workdir(cfg, _workdir_of(tmp_path, cfg, drop=("compensated_sum",)))
