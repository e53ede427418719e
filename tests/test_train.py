"""The training loop: resume equals an uninterrupted run, NaN stops with the last good checkpoint,
a workdir of another model shape is refused, and 8 data-parallel devices give the 1-device loss."""
import functools
import json
import os
import re
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from conftest import stop_after
from longctx import checkpoint as ckpt_lib
from longctx import config as config_lib
from longctx import optim, train
from longctx.data import sources
from longctx.data.tokenizers import ByteTokenizer
from longctx.models import scan

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "configs", "passkey"))
import infini as infini_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def smoke_config(steps=6, **train_overrides):
  cfg = infini_config.get_config("smoke")
  cfg.unlock()
  cfg.train.steps = steps
  cfg.train.log_every = 1
  cfg.train.update(train_overrides)
  cfg.checkpoint.every_steps = 2
  cfg.checkpoint.async_save = False
  cfg.evals.run = ()
  cfg.lock()
  return cfg


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("memory_carry_prob", [0.0, 0.5])
def test_killed_and_resumed_run_ends_with_the_same_parameters(tmp_path, monkeypatch,
                                                              memory_carry_prob):
  """With data.memory_carry_prob, rows of the first resumed step keep their memory (step index 3:
  two of four rows), which must come back from the checkpoint, or the resumed run's parameters
  would differ. The parameters' moving average (train.ema_decay) must come back too."""
  cfg = smoke_config(steps=6, ema_decay=0.9)
  cfg.unlock()
  cfg.data.memory_carry_prob = memory_carry_prob
  cfg.data.memory_carry_from_step = 1
  cfg.lock()
  uninterrupted = train.train_and_evaluate(cfg, str(tmp_path / "a"))

  stop_after(monkeypatch, 3)
  killed = train.train_and_evaluate(cfg, str(tmp_path / "b"))
  assert killed["stopped_at"] == 3
  monkeypatch.undo()
  resumed = train.train_and_evaluate(cfg, str(tmp_path / "b"))
  assert resumed["final_step"] == 6
  for part in ("params", "ema_params"):
    for a, b in zip(_leaves(uninterrupted[part]), _leaves(resumed[part])):
      np.testing.assert_array_equal(a, b)
  # And the interrupted run really stopped early: its params differ from the final ones.
  assert any(not np.array_equal(a, b) for a, b in
             zip(_leaves(killed["params"]), _leaves(resumed["params"])))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
  cfg = smoke_config(steps=8)
  original = sources.PasskeySource.batch

  def poisoned(self, step):
    out = original(self, step)
    if step == 5:
      out["weights"] = out["weights"] * np.nan
    return out
  monkeypatch.setattr(sources.PasskeySource, "batch", poisoned)
  with pytest.raises(train.TrainingDiverged, match="step 5"):
    train.train_and_evaluate(cfg, str(tmp_path))
  ckpt = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints"))
  assert ckpt.latest_step() == 4  # saved every 2 steps; the NaN step 6 was never saved
  ckpt.close()


def test_workdir_of_another_model_shape_is_refused(tmp_path):
  train.train_and_evaluate(smoke_config(steps=2), str(tmp_path))
  other = smoke_config(steps=4)
  other.unlock()
  other.model.mlp_dim = 96
  other.lock()
  with pytest.raises(ValueError, match="checkpoints.*does not match"):
    train.train_and_evaluate(other, str(tmp_path))


def test_a_changed_memory_mechanism_resumes_with_a_fresh_memory(tmp_path):
  """Resuming with a config whose carried memory has another structure (here Infini's Kahan
  terms) restores parameters, optimizer state and step, and starts the memory afresh."""
  train.train_and_evaluate(smoke_config(steps=2), str(tmp_path))
  ckpt = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints"))
  saved, _ = ckpt.restore_item(None, "params")
  ckpt.close()
  other = smoke_config(steps=2)
  other.unlock()
  other.model.infini.compensated_sum = True
  other.lock()
  graphdef, params, model = train.build_model(other)
  tx, schedule = train.make_optimizer(other)
  fresh = train.init_state(other, params, model, tx)
  restored, _ = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints")).restore(
      None, jax.eval_shape(lambda: fresh), restartable=("memory",))
  assert restored["memory"] is None and int(restored["step"]) == 2
  for a, b in zip(_leaves(restored["params"]), _leaves(saved)):
    np.testing.assert_array_equal(a, b)
  other.unlock()
  other.train.steps = 3
  other.lock()
  train.train_and_evaluate(other, str(tmp_path))   # resumes at step 2 and trains one more
  ckpt = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints"))
  assert ckpt.latest_step() == 3
  ckpt.close()


def test_length_curriculum_switches_the_example_length_and_resumes_on_it(tmp_path, monkeypatch):
  """data.seq_len_schedule: steps before the switch see data.seq_len, steps after the new length;
  a run killed after the switch resumes at the new length and ends where an uninterrupted run does."""
  cfg = smoke_config(steps=5)
  cfg.unlock()
  cfg.data.seq_len_schedule = ((3, 512),)
  cfg.lock()
  seen = []
  original = sources.PasskeySource.batch

  def recording(self, step):
    out = original(self, step)
    seen.append((step, out["inputs"].shape[1]))
    return out
  monkeypatch.setattr(sources.PasskeySource, "batch", recording)
  uninterrupted = train.train_and_evaluate(cfg, str(tmp_path / "a"))
  assert seen == [(0, 256), (1, 256), (2, 256), (3, 512), (4, 512)]
  lines = [json.loads(l) for l in open(tmp_path / "a" / "metrics.jsonl")]
  per_token = {l["step"]: l["train/tokens_per_sec"] * l["train/step_time"] for l in lines}
  assert per_token[2] == pytest.approx(4 * 256) and per_token[5] == pytest.approx(4 * 512)

  stop_after(monkeypatch, 4)
  assert train.train_and_evaluate(cfg, str(tmp_path / "b"))["stopped_at"] == 4
  monkeypatch.setattr(ckpt_lib, "should_stop", lambda: False)
  seen.clear()
  resumed = train.train_and_evaluate(cfg, str(tmp_path / "b"))
  assert seen == [(4, 512)]
  for a, b in zip(_leaves(uninterrupted["params"]), _leaves(resumed["params"])):
    np.testing.assert_array_equal(a, b)


def test_compile_only_compiles_the_longest_length_of_a_curriculum(tmp_path):
  cfg = smoke_config(steps=5)
  cfg.unlock()
  cfg.data.seq_len_schedule = ((2, 1024), (4, 512))
  cfg.train.compile_only = True
  cfg.lock()
  (tmp_path / "config.json").write_text('{"train": {"steps": 3}}')  # an earlier run's record
  assert train.train_and_evaluate(cfg, str(tmp_path))["seq_len"] == 1024
  # The compile check leaves the training record alone and writes its own config beside it.
  assert (tmp_path / "config.json").read_text() == '{"train": {"steps": 3}}'
  assert not (tmp_path / "config_changes.jsonl").exists()
  assert json.loads((tmp_path / "config_compile_only.json").read_text())["train"]["compile_only"]


def test_eight_devices_give_the_one_device_loss():
  script = textwrap.dedent(f"""
    import os, sys, json
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, numpy as np
    sys.path.insert(0, {os.path.join(ROOT, "configs", "passkey")!r})
    import infini
    from longctx import optim, sharding, train
    from longctx.data import sources
    out = {{}}
    for n in (1, 8):
      cfg = infini.get_config("smoke")
      cfg.unlock(); cfg.mesh.data = n; cfg.data.batch_size = 8; cfg.lock()
      mesh = sharding.make_mesh(cfg.mesh)
      graphdef, params, model = train.build_model(cfg)
      tx, schedule = optim.make_optimizer(cfg.train)
      state = train.init_state(cfg, params, model, tx)
      step, state_sh, batch_sh = train.compile_train_step(cfg, graphdef, state, mesh, tx, schedule)
      state = jax.device_put(state, state_sh)
      source = sources.make_train_source(cfg)
      losses = []
      for i in range(3):
        state, m = step(state, jax.device_put(source.batch(i), batch_sh))
        losses.append(float(m["loss"]))
      out[n] = dict(devices=len(mesh.devices.flat), losses=losses,
                    norm=float(sum(np.sum(np.square(x)) for x in jax.tree.leaves(state["params"]))))
    print(json.dumps(out))
  """)
  res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
  assert res.returncode == 0, res.stderr[-3000:]
  out = json.loads(res.stdout.strip().splitlines()[-1])
  assert out["8"]["devices"] == 8 and out["1"]["devices"] == 1
  np.testing.assert_allclose(out["8"]["losses"], out["1"]["losses"], rtol=1e-5)
  np.testing.assert_allclose(out["8"]["norm"], out["1"]["norm"], rtol=1e-5)


def test_compile_only_sizes_the_filler_weighted_step(tmp_path):
  """With data.filler_weight_max > 1 the passkey batches carry write_weights (from
  data.filler_weight_from_step on), so the compile check lowers the step with them."""
  cfg = smoke_config(steps=5)
  cfg.unlock()
  cfg.data.filler_weight_max = 64.0
  cfg.train.compile_only = True
  cfg.lock()
  assert "write_weights" in sources.batch_fields(cfg.data)
  result = train.train_and_evaluate(cfg, str(tmp_path))
  assert result["compiled"]
  plain = smoke_config(steps=5)
  assert "write_weights" not in sources.batch_fields(plain.data)


def test_memory_carry_resets_rows_at_the_configured_rate_and_leaves_the_examples_alone():
  cfg = smoke_config()
  cfg.unlock()
  cfg.data.memory_carry_prob = 0.75
  cfg.data.memory_carry_from_step = 3
  cfg.lock()
  plain = smoke_config()
  carried, fresh = sources.make_train_source(cfg), sources.make_train_source(plain)
  for step in range(3):  # before memory_carry_from_step every example is its own document
    assert carried.batch(step)["reset"].all()
  resets = np.concatenate([carried.batch(s)["reset"] for s in range(3, 203)])
  assert 0.18 < resets.mean() < 0.32  # 1 - p, over 200 x batch rows
  for step in (0, 5):  # the same prompts with and without the carry
    a, b = carried.batch(step), fresh.batch(step)
    for key in ("inputs", "targets", "weights"):
      np.testing.assert_array_equal(a[key], b[key])
  assert fresh.batch(5)["reset"].all()


def test_a_row_that_keeps_its_memory_reads_the_next_prompt_through_it():
  """The train step scores a non-reset row from the memory the previous step left (as
  scan.mean_loss from that memory), and that memory matters: a fresh memory gives another loss."""
  cfg = smoke_config(steps=2)
  graphdef, params, model = train.build_model(cfg)
  tx, schedule = optim.make_optimizer(cfg.train)
  state = train.init_state(cfg, params, model, tx)
  step_fn = jax.jit(functools.partial(train.train_step, graphdef=graphdef, model_cfg=cfg.model,
                                      tx=tx, schedule=schedule, train_cfg=cfg.train))
  source = sources.make_train_source(cfg)
  state, _ = step_fn(state, source.batch(0))
  rows = cfg.data.batch_size
  keep = dict(source.batch(1), reset=np.zeros((rows,), bool))
  expected, _ = scan.mean_loss(state["params"], graphdef, state["memory"], keep, cfg.model)
  from_fresh, _ = scan.mean_loss(state["params"], graphdef, model.init_memory(rows),
                                 dict(keep, reset=np.ones((rows,), bool)), cfg.model)
  _, metrics = step_fn(state, keep)
  np.testing.assert_allclose(float(metrics["loss"]), float(expected), rtol=1e-5)
  assert abs(float(from_fresh) - float(expected)) > 1e-4


@pytest.mark.parametrize("field, value, message", [
    ("memory_carry_prob", 1.0, "must lie in [0, 1)"),
    ("memory_carry_prob", -0.1, "must lie in [0, 1)"),
    ("memory_carry_from_step", -1, "must be >= 0"),
])
def test_bad_memory_carry_settings_are_refused(field, value, message):
  cfg = infini_config.get_config("smoke")
  cfg.unlock()
  cfg.data[field] = value
  with pytest.raises(ValueError, match=re.escape(f"data.{field}")) as err:
    config_lib.finalize(cfg)
  assert message in str(err.value)


def test_the_passkey_source_spreads_the_filler_weight_by_the_configured_profile():
  def source(profile):
    cfg = smoke_config()
    cfg.unlock()
    cfg.data.filler_weight_max = 64.0
    cfg.data.filler_weight_profile = profile
    cfg.lock()
    return sources.make_train_source(cfg)
  uniform, geometric = source("uniform").batch(3), source("geometric").batch(3)
  np.testing.assert_array_equal(uniform["inputs"], geometric["inputs"])
  np.testing.assert_allclose(uniform["write_weights"].sum(1), geometric["write_weights"].sum(1),
                             rtol=1e-4)
  for row_u, row_g in zip(uniform["write_weights"], geometric["write_weights"]):
    assert len(np.unique(row_u)) <= 2 < 5 < len(np.unique(row_g))  # r and 1 / growing weights


def test_a_filler_profile_without_a_filler_weight_is_refused():
  cfg = infini_config.get_config("smoke")  # data.filler_weight_max = 1
  cfg.unlock()
  cfg.data.filler_weight_profile = "geometric"
  with pytest.raises(ValueError, match=r"data\.filler_weight_profile='geometric'.*weights nothing"):
    config_lib.finalize(cfg)
  cfg.data.filler_weight_max = 8.0
  config_lib.finalize(cfg)  # with a weight it is accepted


def _smoke_source(**data_fields):
  """The training source of the smoke config with data.<field> = value set (and validated)."""
  cfg = smoke_config()
  cfg.unlock()
  cfg.data.update(data_fields)
  cfg.lock()
  config_lib.validate(cfg)
  return sources.make_train_source(cfg)


def test_the_passkey_source_hands_the_random_filler_phase_to_the_batches():
  fixed = _smoke_source(random_filler_phase=False).batch(3)
  shifted = _smoke_source(random_filler_phase=True).batch(3)
  assert fixed["inputs"].shape == shifted["inputs"].shape
  assert not np.array_equal(fixed["inputs"], shifted["inputs"])
  np.testing.assert_array_equal(fixed["weights"], shifted["weights"])  # same answers' places


def test_the_niah_source_hands_the_random_filler_phase_to_the_batches():
  def source(on):  # seq_len 512: room for a magic-number needle's template
    return _smoke_source(task="niah", seq_len=512, random_filler_phase=on)
  fixed, shifted = source(False).batch(3), source(True).batch(3)
  assert not np.array_equal(fixed["inputs"], shifted["inputs"])
  # Row 0's needle is drawn before its phase: the same answer in the same place (later rows draw
  # from a stream the phase has advanced).
  np.testing.assert_array_equal(fixed["weights"][0], shifted["weights"][0])


def test_random_filler_phase_on_another_task_is_refused():
  cfg = infini_config.get_config("smoke")
  cfg.unlock()
  cfg.data.random_filler_phase = True
  cfg.data.task = "sorting"
  with pytest.raises(ValueError, match=r"data\.random_filler_phase=True shifts the passkey filler"):
    config_lib.validate(cfg)


def test_the_passkey_source_cuts_key_copies_at_the_models_block():
  source = _smoke_source(cut_key_prob=1.0, random_filler_phase=True)
  block = smoke_config().model.block_len
  for row in source.batch(2)["inputs"]:
    text = ByteTokenizer().decode(row)
    first = text.index("The pass key is ") + len("The pass key is ")
    second = text.index(text[first:first + 3], first + 3)   # smoke keys have 3 digits
    assert any(a // block != (a + 2) // block for a in (first, second))


def test_the_passkey_source_hands_end_depth_prob_to_the_batches():
  assert not np.array_equal(_smoke_source(end_depth_prob=0.0).batch(2)["inputs"],
                            _smoke_source(end_depth_prob=1.0).batch(2)["inputs"])


@pytest.mark.parametrize("field", ["end_depth_prob", "cut_key_prob"])
def test_key_placement_fields_are_refused_on_other_tasks(field):
  cfg = infini_config.get_config("smoke")
  cfg.unlock()
  cfg.data[field] = 0.3
  cfg.data.task = "sorting"
  with pytest.raises(ValueError, match=rf"data\.{field}=0\.3 places passkey keys"):
    config_lib.validate(cfg)
