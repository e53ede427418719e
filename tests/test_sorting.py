"""The sorting task (longctx.data.sorting) against the official generator's definitions, its
training source, the `sorting` evaluator (against one direct run_blocks call) and its configs."""
import collections
import importlib.util
import os

import jax
import numpy as np
import pytest
from flax import nnx

from longctx import evaluate
from longctx.config import base_config, finalize
from longctx.data import sorting, sources
from longctx.models import scan
from longctx.models.decoder import Decoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def official_sort(sequence):
  """The official generator's target: Counter.most_common order, unseen symbols appended."""
  out = [item for item, _ in collections.Counter(sequence).most_common()]
  return out + [i for i in range(20) if i not in out]


@pytest.mark.parametrize("seed", range(6))
def test_target_is_the_official_sort(seed):
  rng = np.random.default_rng(seed)
  # Short sequences over few symbols: many ties and unseen symbols.
  seq = rng.integers(0, rng.integers(3, 21), size=int(rng.integers(1, 60)))
  np.testing.assert_array_equal(sorting.sorted_by_count(seq), official_sort(seq.tolist()))


def test_symbols_drift_from_initial_to_final_distribution():
  """Frequencies of the first and last 5% of a long sequence match p_initial and p_final (the
  mixture at r ~ 0.025 and ~ 0.975), replaying the generator's draws of the two distributions."""
  t = 400_000
  seq = sorting.sample_symbols(np.random.default_rng(7), t)
  replay = np.random.default_rng(7)
  p0 = (lambda w: w / w.sum())(replay.integers(1, 10, 20) * 1.0)
  p1 = (lambda w: w / w.sum())(replay.integers(1, 10, 20) * 1.0)
  n = t // 20
  for part, r in ((seq[:n], 0.025), (seq[-n:], 0.975)):
    expected = (1 - r) * p0 + r * p1
    freq = np.bincount(part, minlength=20) / n
    # The mixture is linear in r, so the window's mean r gives its expected frequencies; 5 sigma.
    assert np.all(np.abs(freq - expected) < 5 * np.sqrt(expected / n)), (freq, expected)
  assert seq.min() >= 0 and seq.max() <= 19
  assert np.abs(p0 - p1).max() > 0.02  # the two ends do differ (the test can fail)


def test_batch_layout():
  out = sorting.batch(np.random.default_rng(0), 3, 100)
  assert out["inputs"].shape == out["targets"].shape == out["weights"].shape == (3, 100)
  for b in range(3):
    doc = np.concatenate([out["inputs"][b], out["targets"][b, -1:]])  # the whole document
    symbols = doc[:80]
    assert doc[80] == sorting.SEPARATOR and np.all(symbols < 20)
    np.testing.assert_array_equal(doc[81:], official_sort(symbols.tolist()))
    np.testing.assert_array_equal(out["weights"][b], np.r_[np.zeros(80), np.ones(20)])
    np.testing.assert_array_equal(out["targets"][b, 1:], out["inputs"][b, 2:].tolist() + [doc[-1]])
  assert out["inputs"][0, 80] == sorting.SEPARATOR  # the separator predicts the first answer


def test_source_is_a_function_of_seed_and_step():
  cfg = base_config()
  cfg.data.update(task="sorting", seq_len=64, batch_size=2)
  src = sources.make_train_source(cfg)
  a, b, c = src.batch(3), src.batch(3), src.batch(4)
  np.testing.assert_array_equal(a["inputs"], b["inputs"])
  assert not np.array_equal(a["inputs"], c["inputs"])
  assert a["reset"].all()


def test_config_checks_vocab_and_length():
  cfg = base_config()
  cfg.data.update(task="sorting", seq_len=256)
  cfg.model.update(vocab_size=20)
  with pytest.raises(ValueError, match="model.vocab_size"):
    finalize(cfg)
  cfg.model.vocab_size = 21
  cfg.evals.run = ("sorting",)
  cfg.evals.sorting.lengths = (16,)
  with pytest.raises(ValueError, match="evals.sorting.lengths"):
    finalize(cfg)


@pytest.mark.parametrize("attention,sticky_draw", [("infinity_former", "quantile"),
                                                   ("infinity_former", "categorical"),
                                                   ("xl", "quantile")])
def test_evaluator_matches_one_direct_pass(tiny_cfg, attention, sticky_draw):
  """Streaming (chunks of 2 blocks, batches of 2) gives the accuracy of one run_blocks call over
  the whole documents (the random sticky draw too: its key is carried between the chunks)."""
  cfg = tiny_cfg(attention=attention, vocab_size=21, block_len=8,
                 infinity_former=dict(num_basis=16, basis_widths=(0.05, 0.2), num_samples=8,
                                      num_bins=8, sticky=True, sticky_draw=sticky_draw))
  model = Decoder(cfg, nnx.Rngs(1))
  graphdef, state = nnx.split(model)
  ev = base_config().evals.sorting
  # The random draw's stream belongs to a batch slot, so that case is evaluated in one batch.
  ev.update(lengths=(64, 96), samples=3, batch_size=3 if sticky_draw == "categorical" else 2,
            seed=4, chunk_blocks=2)
  rows = evaluate.sorting_rows(ev, evaluate.Streamer(graphdef, cfg, ev.chunk_blocks), state)
  for row, length in zip(rows, (64, 96)):
    data = sorting.eval_batch(4, 3, length)
    _, outs = jax.jit(lambda p, m, b: scan.run_blocks(graphdef, p, m, b, cfg))(
        state, model.init_memory(3), {k: data[k] for k in ("inputs", "targets", "weights")})
    correct = np.asarray(outs["correct"])[:, -20:]
    assert row["length"] == length and row["samples"] == 3
    np.testing.assert_allclose(row["token_accuracy"], correct.mean(), atol=1e-9)
    np.testing.assert_allclose(row["exact_match"], correct.all(axis=1).mean(), atol=1e-9)
    per_doc = correct.mean(axis=1)
    np.testing.assert_allclose(row["token_accuracy_se"],
                               np.sqrt(np.var(per_doc, ddof=1) / 3), atol=1e-9)


def _load(path):
  spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_sorting_configs_keep_the_same_stm_and_lengths():
  inf = _load(os.path.join(ROOT, "configs", "sorting", "infinity_former.py"))
  xl = _load(os.path.join(ROOT, "configs", "sorting", "xl.py"))
  for preset in ("smoke", "cpu,length=2048", "paper"):
    a, b = inf.get_config(preset), xl.get_config(preset)
    assert a.model.block_len == b.model.block_len
    assert a.model.infinity_former.stm_blocks == b.model.xl.mem_blocks
    assert tuple(a.evals.sorting.lengths) == (a.data.seq_len,)
  paper = inf.get_config("paper")
  assert (paper.model.num_layers, paper.model.d_model, paper.model.num_heads) == (3, 300, 6)
  assert paper.model.infinity_former.num_basis == 512 and paper.model.infinity_former.tau == 0.75
  assert inf.get_config("cpu,length=2048").data.seq_len == 2048
