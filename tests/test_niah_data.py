"""The S-NIAH generator (longctx/data/niah.py): exact lengths, the answer where the mask says, the
needle where the depth says, RULER's templates, file haystacks and their errors."""
import numpy as np
import pytest

from longctx.data import niah
from longctx.data.tokenizers import ByteTokenizer

TOK = ByteTokenizer()
NOISE = niah.make_haystack("noise")


def text(tokens):
  return TOK.decode(np.asarray(tokens))


@pytest.mark.parametrize("needle_type", niah.NEEDLE_TYPES)
@pytest.mark.parametrize("depth", [0.0, 0.5, 1.0])
def test_examples_have_exact_length_answer_and_needle(needle_type, depth):
  ex = niah.eval_example(700, depth, needle_type, seed=3, haystack=NOISE, digits=6)
  assert len(ex.tokens) == 700 and ex.answer_mask.sum() == len(TOK.encode(ex.answer))
  assert ex.answer_mask[-len(TOK.encode(ex.answer)):].all()
  assert text(ex.tokens[ex.answer_mask]) == ex.answer
  prompt = text(ex.tokens[~ex.answer_mask])
  assert prompt.count(ex.answer) >= 1 and prompt.endswith(" ")
  if needle_type == "passkey":
    assert f"The pass key is {ex.answer}." in prompt and ex.answer.isdigit() and len(ex.answer) == 6
  else:
    kind = "number" if needle_type == "number" else "word"
    assert f"One of the special magic {kind}s for {ex.key} is: {ex.answer}." in prompt
    assert prompt.rstrip().endswith(f"The special magic {kind} for {ex.key} mentioned in the "
                                    "provided text is")
  # The needle starts at a sentence boundary within one filler sentence of depth * F.
  assert text(ex.tokens[ex.needle_start:]).startswith(" The pass key" if needle_type == "passkey"
                                                      else " One of the special")
  prefix_len = len(niah._pieces(needle_type, ex.key, ex.answer, TOK)[0])
  fixed = sum(len(p) for p in niah._pieces(needle_type, ex.key, ex.answer, TOK))
  hay = 700 - fixed
  assert abs((ex.needle_start - prefix_len) - depth * hay) <= 25


def test_eval_needles_depend_only_on_seed_and_type():
  a = niah.eval_example(600, 0.1, "word", seed=5, haystack=NOISE, digits=5)
  b = niah.eval_example(900, 0.9, "word", seed=5, haystack=NOISE, digits=5)
  c = niah.eval_example(600, 0.1, "word", seed=6, haystack=NOISE, digits=5)
  assert (a.key, a.answer) == (b.key, b.answer)
  assert (a.key, a.answer) != (c.key, c.answer)


def test_training_batch_mixes_needle_types_and_weights_the_answer():
  rng = np.random.default_rng(0)
  batch = niah.training_batch(rng, 6, 400, niah.NEEDLE_TYPES, NOISE, digits=5, other_weight=0.25)
  assert batch["inputs"].shape == batch["targets"].shape == batch["weights"].shape == (6, 400)
  np.testing.assert_array_equal(batch["inputs"][:, 1:], batch["targets"][:, :-1])
  assert set(np.unique(batch["weights"])) == {0.25, 1.0}
  again = niah.training_batch(np.random.default_rng(0), 6, 400, niah.NEEDLE_TYPES, NOISE, 5,
                              other_weight=0.25)
  np.testing.assert_array_equal(batch["inputs"], again["inputs"])


def test_file_haystack_reads_windows_of_the_files(tmp_path):
  sentences = [f"Sentence number {i} talks about topic {i % 7}." for i in range(200)]
  a, b = tmp_path / "a.txt", tmp_path / "b.txt"
  a.write_text(" ".join(sentences[:100]))
  b.write_text(" ".join(sentences[100:]))
  hay = niah.make_haystack("files", (str(a), str(b)))
  ex = niah.eval_example(2000, 0.5, "number", seed=1, haystack=hay, digits=7)
  prompt = text(ex.tokens[~ex.answer_mask])
  assert "Sentence number" in prompt and "grass is green" not in prompt
  # The needle sits between two sentences of the file text.
  assert text(ex.tokens[:ex.needle_start]).rstrip().endswith(".")
  with pytest.raises(ValueError, match="hold .* tokens; this example needs"):
    niah.eval_example(20000, 0.5, "number", seed=1, haystack=hay, digits=7)
  with pytest.raises(ValueError, match="no such file"):
    niah.make_haystack("files", (str(tmp_path / "missing.txt"),))
  with pytest.raises(ValueError, match="at least one file"):
    niah.make_haystack("files", ())


def test_bad_arguments_name_the_field():
  with pytest.raises(ValueError, match="needle_type"):
    niah.eval_example(600, 0.5, "uuid", seed=1, haystack=NOISE, digits=5)
  with pytest.raises(ValueError, match="haystack"):
    niah.make_haystack("essays")
  with pytest.raises(ValueError, match="total_tokens=50 is too small"):
    niah.eval_example(50, 0.5, "number", seed=1, haystack=NOISE, digits=5)


UNIT_TEXT = TOK.decode(NOISE.unit)


@pytest.mark.parametrize("phase", [0, 1, 37, len(UNIT_TEXT) - 1])
def test_the_filler_phase_starts_the_noise_at_that_token_of_its_cycle(phase):
  ex = niah.niah_prompt(900, 0.5, "passkey", "", "4242", NOISE, filler_phase=phase)
  assert len(ex.tokens) == 900
  pieces = niah._pieces("passkey", "", "4242", TOK)
  prefix_len, needle_len = len(pieces[0]), len(pieces[1])
  hay = np.concatenate([ex.tokens[prefix_len:ex.needle_start],
                        ex.tokens[ex.needle_start + needle_len:-(len(pieces[2]) + len(pieces[3]))]])
  assert (UNIT_TEXT * 40)[phase:].startswith(text(hay))
  # The needle still sits at a sentence boundary of the shifted noise.
  assert ex.needle_start == prefix_len or text(ex.tokens[:ex.needle_start]).endswith(".")


def test_random_filler_phase_varies_the_text_between_a_late_needle_and_the_question():
  """At depth 1 the needle ends the haystack; just before it, phase 0 gives every prompt of one
  length the same tail of noise, the phases give many."""
  def tail(row):
    return text(row).split("is the pass key.")[-1].split(" What is the pass key?")[0]
  fixed = niah.training_batch(np.random.default_rng(0), 48, 1024, ("passkey",), NOISE, 5,
                              depth_range=(0.97, 0.97))
  shifted = niah.training_batch(np.random.default_rng(0), 48, 1024, ("passkey",), NOISE, 5,
                                depth_range=(0.97, 0.97), random_filler_phase=True)
  assert len({tail(r) for r in fixed["inputs"]}) == 1
  assert len({tail(r) for r in shifted["inputs"]}) >= 10
  np.testing.assert_array_equal(fixed["weights"], shifted["weights"])  # the answers' places


def test_training_batch_without_random_phase_draws_as_before():
  """Off, each row is the prompt built from the rng's type, needle and depth draws alone, so
  earlier runs replay exactly."""
  rng = np.random.default_rng(7)
  rows = []
  for _ in range(4):
    needle_type = niah.NEEDLE_TYPES[rng.integers(3)]
    key, value = niah.draw_needle(rng, needle_type, 5)
    ex = niah.niah_prompt(501, float(rng.uniform(0.0, 1.0)), needle_type, key, value, NOISE, rng)
    rows.append(ex.tokens[:-1])
  off = niah.training_batch(np.random.default_rng(7), 4, 500, niah.NEEDLE_TYPES, NOISE, 5)
  np.testing.assert_array_equal(off["inputs"], np.stack(rows))


def test_bad_filler_phases_are_refused(tmp_path):
  for phase in (-1, len(UNIT_TEXT), 2.0, True):
    with pytest.raises(ValueError, match="filler_phase"):
      niah.niah_prompt(900, 0.5, "passkey", "", "4242", NOISE, filler_phase=phase)
  with pytest.raises(ValueError, match="random_filler_phase"):
    niah.training_batch(np.random.default_rng(0), 1, 500, ("passkey",), NOISE, 5,
                        random_filler_phase=1)
  path = tmp_path / "a.txt"
  path.write_text(" ".join(f"Sentence {i}." for i in range(400)))
  files = niah.make_haystack("files", (str(path),))
  with pytest.raises(ValueError, match="'files' haystack"):
    niah.niah_prompt(900, 0.5, "passkey", "", "4242", files, np.random.default_rng(0),
                     filler_phase=3)
  with pytest.raises(ValueError, match="random_filler_phase=True shifts the noise haystack"):
    niah.training_batch(np.random.default_rng(0), 1, 500, ("passkey",), files, 5,
                        random_filler_phase=True)
