"""Generation: decoding token by token gives the teacher-forced logits, for every attention variant."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx.models.decoder import Decoder
from longctx.models.generate import Generator, sample_token
from longctx.models.scan import default_positions


def _teacher_forced_logits(model, tokens, block_len):
  """Reference: an explicit per-block Python loop over the decoder on the whole sequence, padded at
  the end to whole blocks (causal: padding cannot change earlier logits). Returns [B, T, V]."""
  b, t = tokens.shape
  padded = -(-t // block_len) * block_len
  seq = np.pad(tokens, ((0, 0), (0, padded - t)))
  memory = model.init_memory(b)
  out = []
  for start in range(0, padded, block_len):
    logits, memory = model(jnp.asarray(seq[:, start:start + block_len]), memory,
                           positions=default_positions(b, block_len, start),
                           reset=jnp.full((b,), start == 0))
    out.append(np.asarray(logits))
  return np.concatenate(out, axis=1)[:, :t]


@pytest.mark.parametrize("attention,extra", [
    ("bswa", dict(bswa=dict(mem_blocks=1))), ("xl", {}), ("infini", {}),
    ("infini", dict(infini=dict(update_rule="linear_delta"))), ("full", {}),
    ("fam", dict(fam=dict(fam_len=2, mem_blocks=1)))])
@pytest.mark.parametrize("prompt_len", [6, 8])  # open block partly filled / prompt ends on a boundary
def test_decoding_matches_teacher_forced(tiny_cfg, attention, extra, prompt_len):
  cfg = tiny_cfg(attention=attention, num_layers=2, **extra)
  model = Decoder(cfg, nnx.Rngs(3))
  graphdef, params = nnx.split(model)
  prompt = np.random.default_rng(0).integers(0, cfg.vocab_size, (2, prompt_len)).astype(np.int32)
  new = 7  # crosses two block boundaries at block_len 4
  out = Generator(graphdef, cfg, chunk_blocks=1).generate(params, prompt, new, return_logits=True)
  assert out["tokens"].shape == (2, new) and out["logits"].shape == (2, new, cfg.vocab_size)

  full_seq = np.concatenate([prompt, out["tokens"][:, :-1]], axis=1)
  block_len = full_seq.shape[1] if attention == "full" else cfg.block_len
  reference = _teacher_forced_logits(model, full_seq, block_len)[:, prompt_len - 1:]
  np.testing.assert_allclose(out["logits"], reference, rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(out["tokens"], reference.argmax(-1))


def test_prompt_streamed_in_chunks_equals_one_block_at_a_time(tiny_cfg):
  cfg = tiny_cfg(attention="infini", num_layers=1)
  graphdef, params = nnx.split(Decoder(cfg, nnx.Rngs(0)))
  prompt = np.random.default_rng(1).integers(0, cfg.vocab_size, (1, 4 * 7 + 2)).astype(np.int32)
  a = Generator(graphdef, cfg, chunk_blocks=1).generate(params, prompt, 3, return_logits=True)
  b = Generator(graphdef, cfg, chunk_blocks=3).generate(params, prompt, 3, return_logits=True)
  np.testing.assert_allclose(a["logits"], b["logits"], rtol=1e-5, atol=1e-5)


def test_sampling_is_deterministic_given_rng_and_top_p_limits_support():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]] * 2000))
  key = jax.random.key(7)
  a = sample_token(logits, key, 1.0, 1.0)
  np.testing.assert_array_equal(a, sample_token(logits, key, 1.0, 1.0))
  assert set(np.unique(a)) == {0, 1, 2, 3}
  # top_p 0.7: tokens 0 and 1 (0.5 + 0.3 >= 0.7) and nothing else; frequencies 5:3.
  b = np.asarray(sample_token(logits, key, 1.0, 0.7))
  assert set(np.unique(b)) == {0, 1}
  assert abs((b == 0).mean() - 0.625) < 0.05
  # A tiny top_p leaves only the most likely token: greedy.
  np.testing.assert_array_equal(sample_token(logits, key, 1.0, 1e-6), np.zeros(2000))
  np.testing.assert_array_equal(sample_token(logits, key, 0.0, 1.0), np.zeros(2000))


def test_bad_generation_arguments_fail_clearly(tiny_cfg):
  cfg = tiny_cfg(attention="xl")
  graphdef, params = nnx.split(Decoder(cfg, nnx.Rngs(0)))
  gen = Generator(graphdef, cfg)
  with pytest.raises(ValueError, match="rng"):
    gen.generate(params, np.ones((1, 3), np.int32), 2, temperature=0.7)
  with pytest.raises(ValueError, match="max_new_tokens"):
    gen.generate(params, np.ones((1, 3), np.int32), 0)
  with pytest.raises(ValueError, match="prompt"):
    gen.generate(params, np.ones((3,), np.int32), 2)


def test_generated_exact_match_agrees_with_teacher_forced_exact_match(tiny_cfg):
  """Greedy decoding reproduces an answer iff every answer token is the teacher-forced argmax, so the
  two exact matches must agree example by example. Answers are built from the model's own greedy
  continuation (match) and from a changed last token (no match) so both outcomes occur."""
  from longctx import evaluate
  from longctx.data.passkey import PromptExample
  cfg = tiny_cfg(attention="infini", num_layers=2)
  graphdef, params = nnx.split(Decoder(cfg, nnx.Rngs(5)))
  generator = Generator(graphdef, cfg, chunk_blocks=2)
  streamer = evaluate.Streamer(graphdef, cfg, chunk_blocks=2)
  prompt = np.random.default_rng(2).integers(0, cfg.vocab_size, 9).astype(np.int32)
  own = generator.generate(params, prompt[None], 3)["tokens"][0]
  wrong = own.copy()
  wrong[-1] = (wrong[-1] + 1) % cfg.vocab_size
  examples = []
  for answer in (own, wrong):
    tokens = np.concatenate([prompt, answer])
    mask = np.arange(len(tokens)) >= len(prompt)
    examples.append(PromptExample(tokens=tokens, answer_mask=mask, answer="", line=1))
  generated = evaluate.generated_exact_match(generator, params, examples)
  teacher = [exact for _, exact in evaluate.score_examples(streamer, params, examples)]
  assert generated == teacher == [1.0, 0.0]
