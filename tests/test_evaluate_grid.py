"""The passkey and S-NIAH grid evaluators against a direct computation: each prompt run in one
run_blocks call over the whole (padded) sequence, its answer tokens scored, and the cell's mean and
standard error over prompts computed with numpy."""
import jax
import numpy as np
import pytest
from flax import nnx

from longctx import evaluate
from longctx.config import base_config
from longctx.data import niah, passkey
from longctx.models import scan
from longctx.models.decoder import Decoder


def _direct_answer_hits(graphdef, state, model, cfg, example):
  """Per-token 'correct' on the answer positions of one example, from one whole-sequence pass."""
  tokens, mask = np.asarray(example.tokens), np.asarray(example.answer_mask)
  inputs, targets, answer = tokens[:-1], tokens[1:], mask[1:]
  padded = -(-len(inputs) // cfg.block_len) * cfg.block_len
  pad = lambda x: np.pad(x, (0, padded - len(x)))[None]
  batch = {"inputs": pad(inputs), "targets": pad(targets), "weights": pad(answer.astype(np.float32))}
  _, outs = jax.jit(lambda p, m, b: scan.run_blocks(graphdef, p, m, b, cfg))(
      state, model.init_memory(1), batch)
  return np.asarray(outs["correct"])[0, :len(inputs)][answer]


def _expected_cell(hits_per_prompt):
  acc = np.array([h.mean() for h in hits_per_prompt])
  return acc.mean(), acc.std(ddof=1) / np.sqrt(len(acc)), np.mean([h.all() for h in hits_per_prompt])


@pytest.fixture
def tiny_byte_model(tiny_cfg):
  cfg = tiny_cfg(attention="infini", vocab_size=256, block_len=8)
  model = Decoder(cfg, nnx.Rngs(2))
  graphdef, state = nnx.split(model)
  return cfg, model, graphdef, state


def test_passkey_grid_cells_match_direct_passes(tiny_byte_model):
  cfg, model, graphdef, state = tiny_byte_model
  ev = base_config().evals.passkey
  ev.update(lengths=(260,), depths=(0.0, 1.0), samples=3, key_len=3, seed=5, chunk_blocks=2)
  rows = evaluate.passkey_grid(ev, evaluate.Streamer(graphdef, cfg, ev.chunk_blocks), state)
  assert [(r["length"], r["depth"]) for r in rows] == [(260, 0.0), (260, 1.0)]
  for row in rows:
    examples = [passkey.eval_example(261, row["depth"], 3, seed=5 * 1000003 + i) for i in range(3)]
    acc, se, exact = _expected_cell([_direct_answer_hits(graphdef, state, model, cfg, ex)
                                     for ex in examples])
    assert row["samples"] == 3
    np.testing.assert_allclose(row["token_accuracy"], acc, atol=1e-9)
    np.testing.assert_allclose(row["token_accuracy_se"], se, atol=1e-9)
    np.testing.assert_allclose(row["exact_match"], exact, atol=1e-9)


def test_niah_grid_cells_match_direct_passes(tiny_byte_model):
  cfg, model, graphdef, state = tiny_byte_model
  ev = base_config().evals.niah
  ev.update(lengths=(400,), depths=(0.5,), needles=("passkey", "number"), samples=3, digits=4,
            seed=2, chunk_blocks=2)
  haystack = niah.make_haystack("noise")
  rows = evaluate.niah_grid(ev, evaluate.Streamer(graphdef, cfg, ev.chunk_blocks), state, haystack)
  assert [r["needle"] for r in rows] == ["passkey", "number"]
  for row in rows:
    examples = [niah.eval_example(401, 0.5, row["needle"], 2 * 1000003 + i, haystack, 4)
                for i in range(3)]
    acc, se, exact = _expected_cell([_direct_answer_hits(graphdef, state, model, cfg, ex)
                                     for ex in examples])
    np.testing.assert_allclose(row["token_accuracy"], acc, atol=1e-9)
    np.testing.assert_allclose(row["token_accuracy_se"], se, atol=1e-9)
    np.testing.assert_allclose(row["exact_match"], exact, atol=1e-9)


def test_mean_and_se_single_unit_is_nan():
  mean, se = evaluate.mean_and_se([0.25])
  assert mean == 0.25 and np.isnan(se)
