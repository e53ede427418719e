"""Passkey data: exact lengths, key placement, answer masks, loss weights, determinism, JSONL loading."""
import time

import numpy as np
import pytest

from longctx.data import passkey
from longctx.data.passkey import (PREFIX, QUESTION, depth_grid, eval_example, load_jsonl_prompts,
                                  min_passkey_tokens, next_token_arrays, passkey_prompt, random_key,
                                  training_batch)
from longctx.data.tokenizers import ByteTokenizer

TOK = ByteTokenizer()
MAX_SENTENCE = max(len(TOK.encode(" " + s)) for s in passkey.FILLER_SENTENCES)


def _filler_len(ex):
  """F: the number of filler tokens of an example (total minus the fixed pieces)."""
  return len(ex.tokens) - min_passkey_tokens(ex.key, TOK)


@pytest.mark.parametrize("total", [248, 249, 300, 1000, 4097, 32768])
@pytest.mark.parametrize("depth", [0.0, 0.1, 0.25, 0.5, 0.77, 1.0])
def test_exact_length_depth_and_answer(total, depth):
  key = "9054"
  ex = passkey_prompt(total, depth, key, TOK)
  assert ex.tokens.dtype == np.int32 and ex.tokens.shape == (total,)
  assert ex.answer_mask.dtype == bool and ex.answer_mask.shape == (total,)
  # The answer is exactly the last tokens, and decodes to the key (no leading space).
  assert ex.answer_mask.sum() == len(key) and ex.answer_mask[-len(key):].all()
  assert TOK.decode(ex.tokens[ex.answer_mask]) == key
  text = TOK.decode(ex.tokens)
  assert text.startswith(PREFIX) and text.endswith(" " + QUESTION + " " + key)
  # The key sentence sits at key_start, within one filler sentence of depth * F.
  sentence = " " + passkey.KEY_SENTENCE.format(key=key)
  assert TOK.decode(ex.tokens[ex.key_start:ex.key_start + len(sentence)]) == sentence
  assert text.count("The pass key is " + key + ".") == 1
  offset = ex.key_start - len(TOK.encode(PREFIX))
  n_filler = _filler_len(ex)
  assert 0 <= offset <= n_filler
  assert abs(offset - depth * n_filler) <= MAX_SENTENCE
  assert ex.depth == depth and ex.key == ex.answer == key


def test_filler_is_whole_sentences_around_the_key():
  """Before the key: whole filler sentences; after it: whole sentences then one partial cut."""
  ex = passkey_prompt(1000, 0.5, "123", TOK)
  text = TOK.decode(ex.tokens)
  before = text[len(PREFIX):text.index(" The pass key is 123.")]
  assert before.endswith(".") and before.startswith(" The grass is green.")
  unit = "".join(" " + s for s in passkey.FILLER_SENTENCES)
  stream = (unit * 100)
  filler = before + text[text.index("the pass key.") + len("the pass key."):text.index(" What is")]
  assert stream.startswith(filler)     # one continuous stream, key inserted at a sentence boundary


def test_start_and_end_depths():
  start = passkey_prompt(5000, 0.0, "777", TOK)
  assert start.key_start == len(TOK.encode(PREFIX))
  end = passkey_prompt(5000, 1.0, "777", TOK)
  tail = len(end.tokens) - end.key_start
  fixed_tail = len(TOK.encode(" " + passkey.KEY_SENTENCE.format(key="777") + " " + QUESTION + " 777"))
  assert fixed_tail <= tail <= fixed_tail + MAX_SENTENCE


def test_fam_template_is_depth_zero():
  fam = passkey_prompt(3000, 0.0, "4242", TOK, template="fam")
  infini = passkey_prompt(3000, 0.0, "4242", TOK)
  np.testing.assert_array_equal(fam.tokens, infini.tokens)
  assert TOK.decode(fam.tokens).startswith(PREFIX + " The pass key is 4242. Remember it.")
  with pytest.raises(ValueError, match="template='fam'.*depth must be 0"):
    passkey_prompt(3000, 0.5, "4242", TOK, template="fam")


def test_minimum_length_and_too_short():
  need = min_passkey_tokens("9054", TOK)
  ex = passkey_prompt(need, 0.5, "9054", TOK)
  assert len(ex.tokens) == need and _filler_len(ex) == 0
  with pytest.raises(ValueError, match=rf"total_tokens={need - 1} is too small.*{need} tokens"):
    passkey_prompt(need - 1, 0.5, "9054", TOK)
  with pytest.raises(ValueError, match="seq_len=100 is too small"):
    training_batch(np.random.default_rng(0), 2, 100, 5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(depth=1.5), "depth=1.5 must lie in"), (dict(depth=float("nan")), "depth=nan"),
    (dict(key=""), "key=''"), (dict(key=9054), "key=9054"), (dict(template="landmark"), "template"),
    (dict(total_tokens=300.0), "total_tokens=300.0 must be an integer")])
def test_prompt_validation(kwargs, match):
  args = dict(total_tokens=300, depth=0.5, key="9054", tokenizer=TOK) | kwargs
  with pytest.raises(ValueError, match=match):
    passkey_prompt(**args)


def test_one_million_tokens_fast():
  start = time.perf_counter()
  ex = passkey_prompt(1_000_000, 0.5, "31415", TOK)
  elapsed = time.perf_counter() - start
  assert elapsed < 2.0, f"1M-token prompt took {elapsed:.2f} s"
  assert ex.tokens.shape == (1_000_000,) and ex.answer_mask.sum() == 5
  assert abs(ex.key_start - len(TOK.encode(PREFIX)) - 0.5 * _filler_len(ex)) <= MAX_SENTENCE
  assert TOK.decode(ex.tokens[-5:]) == "31415"


def test_random_key():
  rng = np.random.default_rng(0)
  keys = [random_key(rng, k) for k in (1, 2, 5, 12) for _ in range(200)]
  for key in keys:
    assert key.isdigit() and key[0] != "0"
  assert {len(k) for k in keys} == {1, 2, 5, 12}
  assert len(set(k for k in keys if len(k) == 5)) > 150     # actually random
  with pytest.raises(ValueError, match="key_len=0"):
    random_key(rng, 0)


@pytest.mark.parametrize("other_weight", [0.0, 0.1])
def test_training_batch(other_weight):
  b, t, key_len = 4, 512, 6
  batch = training_batch(np.random.default_rng(1), b, t, key_len, other_weight=other_weight)
  assert set(batch) == {"inputs", "targets", "weights"}
  for name, dtype in (("inputs", np.int32), ("targets", np.int32), ("weights", np.float32)):
    assert batch[name].shape == (b, t) and batch[name].dtype == dtype
  # targets are inputs shifted by one (next-token prediction over a T+1-token example).
  np.testing.assert_array_equal(batch["inputs"][:, 1:], batch["targets"][:, :-1])
  for row in range(b):
    w = batch["weights"][row]
    answer = w == 1.0
    # Weight 1 exactly on the last key_len positions, whose targets are the key's digits.
    assert answer.sum() == key_len and answer[-key_len:].all()
    assert np.all(w[~answer] == np.float32(other_weight))
    key = TOK.decode(batch["targets"][row][answer])
    assert key.isdigit() and len(key) == key_len and key[0] != "0"
    text = TOK.decode(batch["inputs"][row])
    assert text.startswith(PREFIX) and f"The pass key is {key}. Remember it." in text
    assert text.endswith(QUESTION + " " + key[:-1])


def test_training_batch_deterministic_and_depth_range():
  a = training_batch(np.random.default_rng(7), 3, 600, 5)
  b = training_batch(np.random.default_rng(7), 3, 600, 5)
  c = training_batch(np.random.default_rng(8), 3, 600, 5)
  for name in a:
    np.testing.assert_array_equal(a[name], b[name])
  assert not np.array_equal(a["inputs"], c["inputs"])
  # depth_range=(0, 0): FAM's prompt, key right after the prefix in every row.
  fam = training_batch(np.random.default_rng(0), 3, 600, 5, depth_range=(0.0, 0.0))
  for row in TOK.decode(fam["inputs"].reshape(-1)).split(PREFIX)[1:]:
    assert row.startswith(" The pass key is ")
  with pytest.raises(ValueError, match="depth_range"):
    training_batch(np.random.default_rng(0), 1, 600, 5, depth_range=(0.8, 0.2))
  with pytest.raises(ValueError, match="other_weight=-1"):
    training_batch(np.random.default_rng(0), 1, 600, 5, other_weight=-1.0)
  with pytest.raises(ValueError, match="numpy.random.Generator"):
    training_batch(7, 1, 600, 5)


def test_depths_cover_range():
  """Depths are drawn uniformly in depth_range: key offsets fall inside it and spread out."""
  rng = np.random.default_rng(3)
  fracs = []
  for _ in range(40):
    batch = training_batch(rng, 1, 2000, 4, depth_range=(0.25, 0.75))
    text = TOK.decode(batch["inputs"][0])
    fracs.append(text.index(" The pass key is ") / len(text))
  fracs = np.array(fracs)
  assert fracs.min() > 0.2 and fracs.max() < 0.75 and fracs.std() > 0.08


def test_next_token_arrays_weights():
  ex = passkey_prompt(400, 0.3, "5678", TOK)
  arrays = next_token_arrays(ex.tokens, ex.answer_mask, other_weight=0.5)
  np.testing.assert_array_equal(arrays["weights"] == 1.0, ex.answer_mask[1:])
  assert np.all(arrays["weights"][~ex.answer_mask[1:]] == 0.5)


def test_eval_example_deterministic():
  a = eval_example(4096, 0.5, 5, seed=3)
  b = eval_example(4096, 0.5, 5, seed=3)
  np.testing.assert_array_equal(a.tokens, b.tokens)
  assert a.key == b.key and len(a.tokens) == 4096
  # The key depends only on (seed, key_len): a grid cell differs only in length and depth.
  assert eval_example(8192, 1.0, 5, seed=3).key == a.key
  assert len({eval_example(1024, 0.0, 5, seed=s).key for s in range(20)}) > 15
  with pytest.raises(ValueError, match="seed=-1"):
    eval_example(4096, 0.5, 5, seed=-1)
  with pytest.raises(ValueError, match="length=100 is too small"):
    eval_example(100, 0.5, 5, seed=0)


def test_depth_grid():
  grid = depth_grid()
  assert grid == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
  assert depth_grid(3) == (0.0, 0.5, 1.0)
  assert set(passkey.DEPTHS.values()) <= set(grid)
  with pytest.raises(ValueError, match="n=4 must be odd"):
    depth_grid(4)


# ------------------------------------------------------------------ JSONL prompts

def _write(tmp_path, content, name="prompts.jsonl"):
  path = tmp_path / name
  path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
  return path


@pytest.mark.parametrize("trailing_newline", [True, False])
def test_jsonl_good(tmp_path, trailing_newline):
  content = ('{"prompt": "What is 2+2? ", "answer": "4"}\n'
             '{"answer": "日本", "prompt": "Say Japan in Japanese: "}')
  path = _write(tmp_path, content + ("\n" if trailing_newline else ""))
  examples = load_jsonl_prompts(path, TOK)
  assert [e.line for e in examples] == [1, 2]
  first, second = examples
  assert TOK.decode(first.tokens) == "What is 2+2? 4"
  assert first.tokens.dtype == np.int32 and first.answer_mask.tolist() == [False] * 13 + [True]
  assert TOK.decode(second.tokens[second.answer_mask]) == "日本" == second.answer
  assert second.answer_mask.sum() == len("日本".encode("utf-8"))
  assert not second.answer_mask[:-6].any()


@pytest.mark.parametrize("lines, bad_line, match", [
    (['{"prompt": "a", "answer": "b"}', '{"prompt": "a", "answer": '], 2, "not valid JSON"),
    (['not json at all'], 1, "not valid JSON"),
    (['{"prompt": "a", "answer": "b"}', '["a", "b"]'], 2, "expected a JSON object"),
    (['{"prompt": "a"}'], 1, "missing field 'answer'"),
    (['{"prompt": "a", "answer": "b"}'] * 2 + ['{"answer": "b"}'], 3, "missing field 'prompt'"),
    (['{"prompt": "a", "answer": 4}'], 1, "field 'answer' must be a string, got int"),
    (['{"prompt": ["a"], "answer": "4"}'], 1, "field 'prompt' must be a string, got list"),
    (['{"prompt": "a", "answer": ""}'], 1, "field 'answer' is empty"),
    (['{"prompt": "", "answer": "b"}'], 1, "field 'prompt' is empty"),
    (['{"prompt": "a", "answer": "b", "id": 3}'], 1, r"unknown field\(s\) \['id'\]"),
    (['{"prompt": "a", "answer": "b"}', '', '{"prompt": "a", "answer": "b"}'], 2, "blank line"),
    (['{"prompt": "a", "answer": "b"}', '   '], 2, "blank line"),
])
def test_jsonl_bad_line(tmp_path, lines, bad_line, match):
  path = _write(tmp_path, "\n".join(lines) + "\n")
  with pytest.raises(ValueError, match=rf"prompts\.jsonl:{bad_line}: {match}"):
    load_jsonl_prompts(path, TOK)


def test_jsonl_trailing_blank_line_is_an_error(tmp_path):
  path = _write(tmp_path, '{"prompt": "a", "answer": "b"}\n\n')
  with pytest.raises(ValueError, match=r"prompts\.jsonl:2: blank line"):
    load_jsonl_prompts(path, TOK)


def test_jsonl_invalid_utf8(tmp_path):
  path = _write(tmp_path, b'{"prompt": "a", "answer": "b"}\n{"prompt": "\xff", "answer": "b"}\n')
  with pytest.raises(ValueError, match=r"prompts\.jsonl:2: not valid UTF-8"):
    load_jsonl_prompts(path, TOK)


def test_jsonl_missing_and_empty_file(tmp_path):
  with pytest.raises(ValueError, match=r"nope\.jsonl: no such file"):
    load_jsonl_prompts(tmp_path / "nope.jsonl", TOK)
  with pytest.raises(ValueError, match=r"prompts\.jsonl: the file is empty"):
    load_jsonl_prompts(_write(tmp_path, ""), TOK)


def test_filler_write_weights_mark_only_the_filler():
  """data.filler_weight_max: per example one weight r in [1, max] on the filler, 1 on what a
  prompt holds once (prefix, key sentence, question); off (max 1) the batch is unchanged."""
  b, t, key_len, top = 6, 600, 5, 64.0
  batch = training_batch(np.random.default_rng(2), b, t, key_len, filler_weight_max=top)
  w = batch["write_weights"]
  assert w.shape == (b, t) and w.dtype == np.float32
  rs = []
  for row in range(b):
    r = w[row].max()
    assert 1.0 <= r <= top and set(np.unique(w[row])) <= {1.0, r}
    rs.append(r)
    key = TOK.decode(batch["targets"][row][batch["weights"][row] == 1.0])
    once = TOK.decode(batch["inputs"][row][w[row] == 1.0]) if r > 1.0 else None
    if once is not None:
      assert once == (PREFIX + f" The pass key is {key}. Remember it. {key} is the pass key."
                      + " " + QUESTION + " " + key[:-1])
  assert len(set(rs)) == b and max(rs) / min(rs) > 2.0             # per example, spread out
  plain = training_batch(np.random.default_rng(2), b, t, key_len)
  assert "write_weights" not in plain
  same = training_batch(np.random.default_rng(2), b, t, key_len, filler_weight_max=1.0)
  for name in plain:
    np.testing.assert_array_equal(plain[name], same[name])
  with pytest.raises(ValueError, match="filler_weight_max=0.5"):
    training_batch(np.random.default_rng(0), 1, 600, 5, filler_weight_max=0.5)


def test_filler_weight_schedule_gives_each_curriculum_stage_its_own_reach():
  """data.filler_weight_schedule: r_max 2,048 on the 512-token prompts, 512 on the 2K ones from
  step 3 (both a 1M-token mass); 1 before filler_weight_from_step; write_weights even where
  data.filler_weight_max is 1 and only the schedule weights."""
  from longctx.config import base_config
  from longctx.data import sources
  cfg = base_config().data
  cfg.update(task="passkey", seq_len=512, seq_len_schedule=((3, 2048),), batch_size=64,
             filler_weight_max=2048.0, filler_weight_schedule=((3, 512.0),),
             filler_weight_from_step=1)
  assert sources.uses_filler_weights(cfg)
  assert [sources.filler_weight_max_at(cfg, s) for s in (0, 1, 2, 3, 9)] == [1, 2048, 2048, 512, 512]
  source = sources.PasskeySource(cfg)
  assert "write_weights" not in source.batch(0)
  short, long = source.batch(1), source.batch(3)
  r_short, r_long = short["write_weights"].max(axis=1), long["write_weights"].max(axis=1)
  assert short["inputs"].shape[1] == 512 and long["inputs"].shape[1] == 2048
  assert r_short.max() <= 2048 and r_short.max() > 512     # beyond the later stage's cap
  assert r_long.max() <= 512 and r_long.max() > 128
  cfg.filler_weight_max = 1.0
  assert sources.uses_filler_weights(cfg) and "write_weights" in source.batch(3)
  cfg.filler_weight_schedule = ()
  assert not sources.uses_filler_weights(cfg) and "write_weights" not in source.batch(3)


def _filler_spans(example):
  w = passkey.filler_write_weights(example, 2.0)  # uniform: 2 exactly on the filler
  filler = np.flatnonzero(w == 2.0)
  breaks = np.flatnonzero(np.diff(filler) > 1)
  starts = np.concatenate([[filler[0]], filler[breaks + 1]])
  stops = np.concatenate([filler[breaks] + 1, [filler[-1] + 1]])
  return list(zip(starts, stops))


@pytest.mark.parametrize("depth", [0.0, 0.4, 1.0])
def test_geometric_filler_weights_keep_the_mass_and_grow_it_by_a_constant_factor(depth):
  """profile 'geometric': each filler span still weighs r x its length and the once-pieces 1, but
  the span's cumulative mass follows i + (r - 1) n (g^i - 1) / (g^n - 1), g = (1 + (r - 1) n /
  S0)^(1/n) (the closed form, written independently of the implementation's normalised
  exponentials), so its first block carries a small share instead of 128 / n of it."""
  example = eval_example(2048 + 1, depth, 5, seed=3)
  r = 512.0
  uniform = passkey.filler_write_weights(example, r)
  geo = passkey.filler_write_weights(example, r, profile="geometric").astype(np.float64)
  np.testing.assert_array_equal(geo[uniform == 1.0], 1.0)
  spans = _filler_spans(example)
  assert len(spans) == 2 if depth == 0.4 else 1 <= len(spans) <= 2
  for start, stop in spans:
    n = stop - start
    np.testing.assert_allclose(geo[start:stop].sum(), r * n, rtol=1e-5)
    s0 = geo[:start].sum()
    g = (1.0 + (r - 1.0) * n / s0) ** (1.0 / n)
    i = np.arange(1, n + 1)
    expected = i + (r - 1.0) * n * (g ** i - 1.0) / (g ** n - 1.0)
    np.testing.assert_allclose(np.cumsum(geo[start:stop]), expected, rtol=1e-4)
    assert np.all(np.diff(geo[start:stop]) > 0)
    if n >= 4 * 128:  # uniform: the first block carries 128 / n of the span's mass
      first_block_share = geo[start:start + 128].sum() / (r * n)
      assert first_block_share < 128 / n
      if s0 < 1000:  # the span right after the prefix: its first block is read as "young"
        assert first_block_share < 0.01
  np.testing.assert_array_equal(passkey.filler_write_weights(example, 1.0, profile="geometric"),
                                np.ones(len(example.tokens), np.float32))


def test_training_batch_spreads_the_filler_weight_by_the_profile():
  kw = dict(filler_weight_max=64.0)
  uniform = training_batch(np.random.default_rng(4), 3, 1024, 5, **kw)
  geo = training_batch(np.random.default_rng(4), 3, 1024, 5, filler_weight_profile="geometric", **kw)
  for name in ("inputs", "targets", "weights"):
    np.testing.assert_array_equal(uniform[name], geo[name])
  np.testing.assert_allclose(uniform["write_weights"].sum(1), geo["write_weights"].sum(1),
                             rtol=1e-4)
  assert not np.array_equal(uniform["write_weights"], geo["write_weights"])
  with pytest.raises(ValueError, match="filler_weight_profile='linear'"):
    training_batch(np.random.default_rng(0), 1, 600, 5, filler_weight_profile="linear")


UNIT_TEXT = "".join(" " + s for s in passkey.FILLER_SENTENCES)   # one filler cycle, as text


@pytest.mark.parametrize("phase", [0, 1, 7, 40, len(UNIT_TEXT) - 1])
@pytest.mark.parametrize("depth", [0.0, 0.3, 1.0])
def test_filler_phase_rotates_the_stream_and_keeps_the_key_at_a_sentence_start(phase, depth):
  ex = passkey_prompt(1001, depth, "4242", TOK, filler_phase=phase)
  text = TOK.decode(ex.tokens)
  sentence = " " + passkey.KEY_SENTENCE.format(key="4242")
  assert len(ex.tokens) == 1001 and text.startswith(PREFIX)
  assert text.endswith(" " + QUESTION + " 4242")
  key_at = len(PREFIX) + (ex.key_start - len(TOK.encode(PREFIX)))
  assert text[key_at:key_at + len(sentence)] == sentence
  # Independent reference: the filler, key sentence removed, is the cycle's text from `phase` on.
  filler = text[len(PREFIX):key_at] + text[key_at + len(sentence):-len(" " + QUESTION + " 4242")]
  assert (UNIT_TEXT * 20)[phase:].startswith(filler)
  # The key starts right after the prefix or where a filler sentence would start.
  assert key_at == len(PREFIX) or text[key_at - 1] == "."
  if depth == 0.0:
    assert key_at == len(PREFIX)


def test_random_filler_phase_varies_the_text_between_a_late_key_and_the_question():
  """The depth-1 layout (the partial sentence between the key sentence and the question) is one
  and the same at phase 0 for a given length; the phases give every cut of a sentence."""
  def tail_gap(phase):
    ex = passkey_prompt(2049, 1.0, "12345", TOK, filler_phase=phase)
    return len(ex.tokens) - ex.key_start
  gaps = {tail_gap(p) for p in range(len(UNIT_TEXT))}
  assert len(gaps) >= MAX_SENTENCE
  batch = training_batch(np.random.default_rng(0), 64, 2048, 5, depth_range=(1.0, 1.0),
                         random_filler_phase=True)
  fixed = training_batch(np.random.default_rng(0), 64, 2048, 5, depth_range=(1.0, 1.0))
  def last_sentence_tail(row):
    return TOK.decode(row).split("the pass key.")[-1].split(" " + QUESTION)[0]
  assert len({last_sentence_tail(r) for r in fixed["inputs"]}) == 1
  assert len({last_sentence_tail(r) for r in batch["inputs"]}) >= 10


def test_training_batch_without_random_phase_draws_as_before():
  """Off, the batch is the one built from the rng's depth and key draws alone (phase 0), so
  earlier runs replay exactly; on, the same keys come with other layouts."""
  rng = np.random.default_rng(5)
  rows = []
  for _ in range(3):
    depth = float(rng.uniform(0.0, 1.0))
    rows.append(passkey_prompt(601, depth, random_key(rng, 5), TOK).tokens[:-1])
  off = training_batch(np.random.default_rng(5), 3, 600, 5)
  np.testing.assert_array_equal(off["inputs"], np.stack(rows))
  on = training_batch(np.random.default_rng(5), 3, 600, 5, random_filler_phase=True)
  assert not np.array_equal(on["inputs"], off["inputs"])
  assert TOK.decode(on["inputs"][0][-5:]) == TOK.decode(off["inputs"][0][-5:])  # "is 1234"


@pytest.mark.parametrize("phase", [-1, len(UNIT_TEXT), 2.0, True])
def test_bad_filler_phase_is_refused(phase):
  with pytest.raises(ValueError, match="filler_phase"):
    passkey_prompt(1000, 0.5, "1", TOK, filler_phase=phase)
  with pytest.raises(ValueError, match="random_filler_phase"):
    training_batch(np.random.default_rng(0), 1, 600, 5, random_filler_phase=1)


def _cut_by_text(row: str, block: int) -> bool:
  """Independent of key_copy_spans: byte rows, so a character index is a token index."""
  first = row.index("The pass key is ") + len("The pass key is ")
  key = row[first:first + 5]
  second = row.index(key, first + len(key))
  return any(a // block != (a + len(key) - 1) // block for a in (first, second))


def test_key_copy_spans_are_the_two_copies_of_the_key():
  ex = passkey_prompt(1000, 0.4, "40417", TOK, filler_phase=17)
  text = TOK.decode(ex.tokens)
  spans = passkey.key_copy_spans(ex, TOK)
  assert [text[a:b] for a, b in spans] == ["40417", "40417"]
  assert spans[0][0] == text.index("The pass key is 40417") + len("The pass key is ")
  assert spans[1][0] == text.index("Remember it. 40417") + len("Remember it. ")
  block = spans[1][0] + 2   # a boundary inside the second copy, none inside the first
  assert passkey.cut_key_copies(ex, TOK, block) == [1] and not passkey.cut_key_copies(ex, TOK, 2048)


def test_cut_key_prob_gives_that_share_of_prompts_a_key_copy_cut_by_a_block_boundary():
  """Uniform depths cut a copy of the key at a 128-token boundary in ~6% of prompts (the layout
  of 4 of the evaluator's 25 cells); cut_key_prob p raises that to about p + (1 - p) * 6%, and 0
  draws exactly as before."""
  def cut_share(batch):
    return np.mean([_cut_by_text(TOK.decode(r), 128) for r in batch["inputs"]])
  uniform = training_batch(np.random.default_rng(3), 300, 512, 5, random_filler_phase=True)
  cut = training_batch(np.random.default_rng(3), 300, 512, 5, random_filler_phase=True,
                       cut_key_prob=0.5, cut_block_len=128)
  assert cut_share(uniform) < 0.12
  assert 0.45 < cut_share(cut) < 0.65
  everyone = training_batch(np.random.default_rng(4), 20, 2048, 5, random_filler_phase=True,
                            cut_key_prob=1.0, cut_block_len=128)
  assert cut_share(everyone) == 1.0
  off = training_batch(np.random.default_rng(3), 4, 600, 5, cut_key_prob=0.0, cut_block_len=128)
  np.testing.assert_array_equal(off["inputs"], training_batch(np.random.default_rng(3), 4, 600, 5)["inputs"])
  for bad in (-0.1, 1.5, True, "0.5"):
    with pytest.raises(ValueError, match="cut_key_prob"):
      training_batch(np.random.default_rng(0), 1, 600, 5, cut_key_prob=bad, cut_block_len=128)
  with pytest.raises(ValueError, match="cut_block_len"):
    training_batch(np.random.default_rng(0), 1, 600, 5, cut_key_prob=0.5)
  # A layout that cannot be cut is an error, not a silent uncut prompt: at depth 0 and phase 0
  # the key sentence sits at one place, its copies inside the first 4,096-token block.
  with pytest.raises(ValueError, match="no 601-token prompt in 1000 draws"):
    training_batch(np.random.default_rng(0), 1, 600, 5, depth_range=(0.0, 0.0),
                   cut_key_prob=1.0, cut_block_len=4096)


def test_end_depth_prob_puts_that_share_of_keys_in_the_answers_block():
  """Uniform depths rarely give the evaluator's depth-1 layout at 2K (the key sentence in the
  answer's block); end_depth_prob p gives it to about p of the prompts, and 0 draws as before."""
  def local_share(batch, block=128):
    # bytes: character = token index; the key sentence's middle in the answer's block
    rows = [TOK.decode(r) for r in batch["inputs"]]
    return np.mean([r.rindex(". Remember it.") // block == (len(r) - 1) // block for r in rows])
  uniform = training_batch(np.random.default_rng(3), 200, 2048, 5, random_filler_phase=True)
  ended = training_batch(np.random.default_rng(3), 200, 2048, 5, random_filler_phase=True,
                         end_depth_prob=0.5)
  assert local_share(uniform) < 0.05
  assert 0.35 < local_share(ended) < 0.65
  off = training_batch(np.random.default_rng(3), 4, 600, 5, end_depth_prob=0.0)
  np.testing.assert_array_equal(off["inputs"], training_batch(np.random.default_rng(3), 4, 600, 5)["inputs"])
  for bad in (-0.1, 1.5, True, "0.5"):
    with pytest.raises(ValueError, match="end_depth_prob"):
      training_batch(np.random.default_rng(0), 1, 600, 5, end_depth_prob=bad)
