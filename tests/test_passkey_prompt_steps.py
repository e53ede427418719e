"""data.prompt_steps: passkey prompts fed over several training steps with the memory carried.

Checked against independent constructions: the chunks a row is fed, joined, are one well-formed
passkey prompt (key found by decoding the bytes); feeding a prompt chunk by chunk through a FAM
model with the carried memory gives the loss of the whole prompt in one pass."""
import os
import re
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from longctx import config as config_lib
from longctx import train
from longctx.data import sources
from longctx.data.tokenizers import ByteTokenizer
from longctx.models import scan

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "configs", "passkey"))
import fam as fam_config  # noqa: E402
import infini as infini_config  # noqa: E402

KEY = re.compile(r"The pass key is (\d+)\. Remember it\. \1 is the pass key\.")


def stream_config(prompt_steps=3, from_step=2, module=fam_config, **data):
  cfg = module.get_config("smoke")
  cfg.unlock()
  cfg.train.update(random_position_offset=False, state_passing_prob=0.0, steps=6, log_every=1)
  cfg.checkpoint.update(every_steps=3, async_save=False)
  cfg.evals.run = ()
  cfg.data.update(prompt_steps=prompt_steps, prompt_steps_from_step=from_step, **data)
  cfg.lock()
  return config_lib.finalize(cfg)


def _prompts_of_row(source, row, first, last):
  """The prompts row `row` is fed from step `first` (a prompt start) to before `last`, each as
  (n, joined chunk arrays, [reset per chunk])."""
  out, step = [], first
  while True:
    start, n = source.prompt_at(row, step)
    assert start == step
    if step + n > last:
      return out
    chunks = [{k: v[row] for k, v in source.batch(s).items()} for s in range(step, step + n)]
    joined = {k: np.concatenate([c[k] for c in chunks]) for k in ("inputs", "targets", "weights",
                                                                   "positions")}
    out.append((n, joined, [bool(c["reset"]) for c in chunks]))
    step += n


def test_the_chunks_of_a_row_join_into_whole_passkey_prompts():
  cfg = stream_config(prompt_steps=3, from_step=2)
  source = sources.make_train_source(cfg)
  plain_cfg = stream_config(prompt_steps=1)
  plain = sources.make_train_source(plain_cfg)
  for step in range(2):  # before prompt_steps_from_step: exactly the one-step batches
    a, b = source.batch(step), plain.batch(step)
    assert set(a) == set(b) and "positions" not in a
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
  t = cfg.data.seq_len
  tok = ByteTokenizer()
  lengths = []
  for row in range(cfg.data.batch_size):
    prompts = _prompts_of_row(source, row, 2, 60)
    assert sum(n for n, _, _ in prompts) >= 60 - 2 - 3
    for n, joined, resets in prompts:
      lengths.append(n)
      assert resets == [True] + [False] * (n - 1)  # memory cleared only when a prompt starts
      np.testing.assert_array_equal(joined["positions"], np.arange(n * t))
      np.testing.assert_array_equal(joined["inputs"][1:], joined["targets"][:-1])
      text = tok.decode(list(joined["inputs"]) + [int(joined["targets"][-1])])
      found = KEY.findall(text)
      assert len(found) == 1, text[:200]
      scored = np.flatnonzero(joined["weights"])
      # The loss is on the answer only: the key's digits, the last tokens of the last chunk.
      np.testing.assert_array_equal(scored, np.arange(n * t - cfg.data.key_len, n * t))
      assert tok.decode(list(joined["targets"][scored])) == found[0]
  assert set(lengths) == {1, 2, 3}
  with pytest.raises(ValueError, match=re.escape("step 1 comes before data.prompt_steps_from_step=2")):
    source.prompt_at(0, 1)


def test_batches_are_a_pure_function_of_the_step():
  cfg = stream_config(prompt_steps=4, from_step=0)
  walked = sources.make_train_source(cfg)
  for step in range(30):
    walked.batch(step)
  fresh = sources.make_train_source(cfg)  # a resumed run asks for step 29 first
  a, b = walked.batch(29), fresh.batch(29)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  # Rows are out of step with each other (not every row starts a prompt at once).
  assert 0 < np.mean([walked.batch(s)["reset"].mean() for s in range(5, 30)]) < 1


def test_a_prompt_fed_over_steps_scores_as_the_whole_prompt_in_one_pass():
  """FAM (state carried per row, stop-gradient between steps): the answer's loss from the chunks
  fed one call at a time equals the loss of the joined prompt in one call; from a fresh memory the
  last chunk scores otherwise (the key is in the carried state)."""
  cfg = stream_config(prompt_steps=3, from_step=0)
  source = sources.make_train_source(cfg)
  graphdef, params, model = train.build_model(cfg)
  row, start = next((r, s) for s in range(40) for r in range(cfg.data.batch_size)
                    if source.prompt_at(r, s) == (s, 3))
  chunks = [{k: v[row:row + 1] for k, v in source.batch(s).items()} for s in range(start, start + 3)]
  memory = model.init_memory(1)
  for chunk in chunks:
    loss, (memory, _) = scan.mean_loss(params, graphdef, memory, chunk, cfg.model)
    memory = jax.lax.stop_gradient(memory)
  whole = {k: np.concatenate([c[k] for c in chunks], axis=1) for k in ("inputs", "targets",
                                                                       "weights")}
  whole_loss, _ = scan.mean_loss(params, graphdef, model.init_memory(1), whole, cfg.model)
  np.testing.assert_allclose(float(loss), float(whole_loss), rtol=1e-5)
  fresh_loss, _ = scan.mean_loss(params, graphdef, model.init_memory(1),
                                 dict(chunks[-1], reset=np.ones((1,), bool)), cfg.model)
  assert abs(float(fresh_loss) - float(whole_loss)) > 1e-4


def test_training_runs_across_the_switch_to_multi_step_prompts(tmp_path):
  result = train.train_and_evaluate(stream_config(prompt_steps=2, from_step=3), str(tmp_path))
  assert result["final_step"] == 6


@pytest.mark.parametrize("change, message", [
    (dict(data=dict(prompt_steps=0)), "data.prompt_steps=0 must be an integer >= 1"),
    (dict(data=dict(prompt_steps_from_step=-1)), "data.prompt_steps_from_step=-1"),
    (dict(data=dict(seq_len_schedule=((5, 512),))), "changes the length at step 5"),
    (dict(data=dict(memory_carry_prob=0.5)), "data.memory_carry_prob=0.5 cannot be combined"),
    (dict(train=dict(state_passing_prob=0.8)), "train.state_passing_prob=0.8 cannot be combined"),
    (dict(train=dict(random_position_offset=True)), "train.random_position_offset=True cannot"),
])
def test_bad_prompt_steps_settings_are_refused(change, message):
  cfg = fam_config.get_config("smoke")
  cfg.unlock()
  cfg.train.update(random_position_offset=False, state_passing_prob=0.0)
  cfg.data.update(prompt_steps=2, prompt_steps_from_step=2)
  for section, values in change.items():
    cfg[section].update(values)
  with pytest.raises(ValueError, match=re.escape(message)):
    config_lib.finalize(cfg)


def test_other_tasks_refuse_multi_step_prompts():
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "configs", "sorting"))
  import xl as sorting_xl  # noqa: E402
  cfg = sorting_xl.get_config("smoke")
  cfg.unlock()
  cfg.data.prompt_steps = 2
  with pytest.raises(ValueError, match=re.escape("data.prompt_steps=2 feeds passkey prompts")):
    config_lib.finalize(cfg)


def test_short_prompts_are_whole_prompts_at_the_start_of_one_step():
  """data.prompt_steps_short_prob: a short prompt is one step whose first short_len tokens are a
  well-formed passkey prompt scored on its answer, the rest padding; the other prompts are as
  before (whole prompts over 1..K steps)."""
  short_len = 256
  cfg = stream_config(prompt_steps=3, from_step=2, seq_len=512, prompt_steps_short_prob=0.5,
                      prompt_steps_short_len=short_len)
  source = sources.make_train_source(cfg)
  t = cfg.data.seq_len
  tok = ByteTokenizer()
  kinds = []
  for row in range(cfg.data.batch_size):
    for n, joined, resets in _prompts_of_row(source, row, 2, 60):
      index = len(kinds)  # names the prompt in a failure message
      if not np.any(joined["weights"][short_len:]) and n == 1 and not np.any(
          joined["inputs"][short_len:]):
        kinds.append("short")
        scored = np.flatnonzero(joined["weights"])
        np.testing.assert_array_equal(scored, np.arange(short_len - cfg.data.key_len, short_len))
        np.testing.assert_array_equal(joined["targets"][short_len:], 0)
        text = tok.decode(list(joined["inputs"][:short_len]) + [int(joined["targets"][short_len - 1])])
        found = KEY.findall(text)
        assert len(found) == 1, (index, text)
        assert tok.decode(list(joined["targets"][scored])) == found[0]
      else:
        kinds.append(n)
        scored = np.flatnonzero(joined["weights"])
        np.testing.assert_array_equal(scored, np.arange(n * t - cfg.data.key_len, n * t))
      assert resets == [True] + [False] * (n - 1)
      np.testing.assert_array_equal(joined["positions"], np.arange(n * t))
  assert {1, 2, 3, "short"} <= set(kinds)
  assert 0.3 < kinds.count("short") / len(kinds) < 0.7, kinds
  # Whether a prompt is short has its own stream: the short ones are exactly those the source says.
  row_starts = source._starts[0]
  assert any(source.is_short_prompt(0, s) for s, _ in row_starts)
  assert all(n == 1 for s, n in row_starts if source.is_short_prompt(0, s))


def test_a_short_prompt_row_scores_as_the_short_prompt_alone():
  """The padding after a short prompt's answer cannot reach its loss (causal model, FAM included:
  a block's FAM update is read only by later blocks)."""
  short_len = 256
  cfg = stream_config(prompt_steps=3, from_step=0, seq_len=512, prompt_steps_short_prob=0.5,
                      prompt_steps_short_len=short_len)
  source = sources.make_train_source(cfg)
  graphdef, params, model = train.build_model(cfg)
  row, step = next((r, s) for s in range(40) for r in range(cfg.data.batch_size)
                   if source.prompt_at(r, s)[0] == s and source.is_short_prompt(r, s))
  batch = {k: v[row:row + 1] for k, v in source.batch(step).items()}
  loss, _ = scan.mean_loss(params, graphdef, model.init_memory(1), batch, cfg.model)
  alone = {k: batch[k][:, :short_len] for k in ("inputs", "targets", "weights")}
  alone_loss, _ = scan.mean_loss(params, graphdef, model.init_memory(1), alone, cfg.model)
  np.testing.assert_allclose(float(loss), float(alone_loss), rtol=1e-5)
  assert float(loss) > 0


@pytest.mark.parametrize("data, message", [
    (dict(prompt_steps_short_prob=1.0, prompt_steps_short_len=128),
     "data.prompt_steps_short_prob=1.0 must be in [0, 1)"),
    (dict(prompt_steps=1, prompt_steps_short_prob=0.25, prompt_steps_short_len=128),
     "set data.prompt_steps > 1"),
    (dict(prompt_steps_short_prob=0.25), "data.prompt_steps_short_len=0 must be an integer in 244..255"),
    (dict(prompt_steps_short_prob=0.25, prompt_steps_short_len=200),
     "data.prompt_steps_short_len=200 must be an integer in 244..255"),
    (dict(prompt_steps_short_prob=0.25, prompt_steps_short_len=256),
     "data.prompt_steps_short_len=256 must be an integer in 244..255"),
])
def test_bad_short_prompt_settings_are_refused(data, message):
  cfg = fam_config.get_config("smoke")
  cfg.unlock()
  cfg.train.update(random_position_offset=False, state_passing_prob=0.0)
  cfg.data.update(prompt_steps=2, prompt_steps_from_step=2)
  cfg.data.update(data)
  with pytest.raises(ValueError, match=re.escape(message)):
    config_lib.finalize(cfg)
