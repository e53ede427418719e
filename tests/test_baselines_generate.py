"""Generation (models/generate.py) with the memorizing, compressive and rmt decoders: decoding token by
token on the open block gives the teacher-forced logits of a per-block loop."""
import numpy as np
import pytest
from flax import nnx

from longctx.models.decoder import Decoder
from longctx.models.generate import Generator
from test_generate import _teacher_forced_logits


@pytest.mark.parametrize("attention,extra", [
    ("memorizing", dict(memorizing=dict(capacity=8, top_k=3, layers=(1,)))),
    ("compressive", dict(compressive=dict(compressed_len=2, rate=2))),
    ("rmt", dict(rmt=dict(num_tokens=2))),
])
def test_decoding_matches_teacher_forced(tiny_cfg, attention, extra):
  cfg = tiny_cfg(attention=attention, num_layers=2, **extra)
  model = Decoder(cfg, nnx.Rngs(3))
  graphdef, params = nnx.split(model)
  prompt = np.random.default_rng(0).integers(0, cfg.vocab_size, (2, 10)).astype(np.int32)
  new = 7  # crosses two block boundaries at block_len 4
  out = Generator(graphdef, cfg, chunk_blocks=1).generate(params, prompt, new, return_logits=True)
  full_seq = np.concatenate([prompt, out["tokens"][:, :-1]], axis=1)
  reference = _teacher_forced_logits(model, full_seq, cfg.block_len)[:, prompt.shape[1] - 1:]
  np.testing.assert_allclose(out["logits"], reference, rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(out["tokens"], reference.argmax(-1))
