"""`python -m longctx.main` end to end on the smoke preset: trains, is killed (SIGTERM) mid-run,
resumes on the same workdir, evaluates, and writes everything; bad input gives one clear message."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "--config=configs/passkey/infini.py:smoke"


def _main(*args, **kw):
  return subprocess.run([sys.executable, "-m", "longctx.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300, **kw)


def _last_step(workdir):
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return 0
  lines = open(path).read().strip().splitlines()
  return json.loads(lines[-1])["step"] if lines else 0


def test_train_kill_resume_evaluate(tmp_path):
  workdir = str(tmp_path / "run")
  jsonl = tmp_path / "prompts.jsonl"
  jsonl.write_text(json.dumps({"prompt": "The pass key is 123. " * 20 + "The pass key is ",
                               "answer": "123"}) + "\n")
  args = [CONFIG, f"--workdir={workdir}", "--config.train.steps=150", "--config.train.log_every=5",
          f"--config.evals.passkey.jsonl={jsonl}"]
  proc = subprocess.Popen([sys.executable, "-m", "longctx.main", *args], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 240
  while _last_step(workdir) < 30 and time.time() < deadline and proc.poll() is None:
    time.sleep(0.2)
  assert proc.poll() is None, "the run ended before it could be killed"
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 0, out[-3000:]
  assert "SIGTERM" in out
  killed_at = _last_step(workdir)
  assert 30 <= killed_at < 150
  assert not os.path.exists(os.path.join(workdir, "passkey.json"))  # killed before evaluation

  res = _main(*args)
  assert res.returncode == 0, res.stderr[-3000:]
  assert "Resumed" in res.stderr
  steps = [json.loads(l)["step"] for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert steps[-1] == 150 and min(s for s in steps if s > killed_at) <= killed_at + 5
  for name in ("config.json", "passkey.json", "passkey.md", "passkey.png", "tb"):
    assert os.path.exists(os.path.join(workdir, name)), name
  result = json.load(open(os.path.join(workdir, "passkey.json")))
  assert {(r["length"], r["depth"]) for r in result["grid"]} == {
      (n, d) for n in (256, 512) for d in (0.0, 0.5, 1.0)}
  assert result["jsonl"][0]["line"] == 1 and 0.0 <= result["jsonl"][0]["token_accuracy"] <= 1.0
  # The smoke preset also decodes the answers: generated exact match beside the teacher-forced one.
  assert all(0.0 <= r["generated_exact_match"] <= 1.0 for r in result["grid"])
  assert "generated_exact_match" in result["jsonl"][0]
  assert json.load(open(os.path.join(workdir, "config.json")))["train"]["steps"] == 150


@pytest.mark.parametrize("args, expected", [
    (["--config=configs/passkey/missing.py:smoke"], "missing.py"),
    ([CONFIG, "--config.train.stepz=3"], "stepz"),
    ([CONFIG, "--config.data.seq_len=100"], "data.seq_len"),
    ([CONFIG, "--config.model.attention=nope"], "model.attention"),
    ([CONFIG, "--config.evals.passkey.lengths=(512,1024)", "--config.evals.passkey.lengths=(512,)"],
     "--config.evals.passkey.lengths is given twice"),
    # The '--name value' forms absl also accepts.
    (["--config", "configs/passkey/missing.py:smoke"], "missing.py"),
    ([CONFIG, "--config.train.steps", "3", "--config.train.steps=4"],
     "--config.train.steps is given twice"),
])
def test_bad_input_gives_one_clear_message(tmp_path, args, expected):
  res = _main(*args, f"--workdir={tmp_path}")
  assert res.returncode != 0
  assert expected in res.stderr
  assert "Traceback" not in res.stderr


def test_malformed_jsonl_names_the_line(tmp_path):
  bad = tmp_path / "bad.jsonl"
  bad.write_text(json.dumps({"prompt": "a b c", "answer": "1"}) + "\n{not json\n")
  res = _main(CONFIG, f"--workdir={tmp_path / 'w'}", "--config.train.steps=1",
              "--config.evals.passkey.lengths=()", f"--config.evals.passkey.jsonl={bad}")
  assert res.returncode != 0
  assert "bad.jsonl:2" in res.stderr and "Traceback" not in res.stderr
