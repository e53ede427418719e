"""The workdir's config record: config.json is rewritten, and a changed config leaves a trace."""
import json
import os

from longctx.writers import write_config


def _cfg(steps, lengths):
  return json.dumps({"train": {"steps": steps, "lr": 1e-3}, "data": {"schedule": lengths}})


def test_config_changes_are_recorded_on_resume(tmp_path):
  workdir = str(tmp_path)
  assert write_config(_cfg(100, []), workdir) == {}
  assert not os.path.exists(os.path.join(workdir, "config_changes.jsonl"))
  assert write_config(_cfg(100, []), workdir) == {}   # same config: nothing to record
  changes = write_config(_cfg(300, [[100, 1024]]), workdir)
  assert changes == {"train.steps": [100, 300], "data.schedule": [[], [[100, 1024]]]}
  with open(os.path.join(workdir, "config_changes.jsonl")) as f:
    records = [json.loads(line) for line in f]
  assert [r["changes"] for r in records] == [changes]
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["train"]["steps"] == 300
