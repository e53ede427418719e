"""Two-level (sqrt) checkpointing changes memory, never results: grouped == plain scan."""
import jax
import numpy as np
import pytest
from flax import nnx

from longctx import config as config_lib
from longctx.models import scan
from longctx.models.decoder import Decoder


@pytest.mark.parametrize("attention", ["infini", "bswa", "xl"])
def test_grouped_scan_equals_plain_scan(attention):
  tokens = jax.random.randint(jax.random.key(1), (2, 96), 0, 256)  # 12 blocks of 8
  results = {}
  for group in (0, -1, 4):
    cfg = config_lib.model_config(attention=attention, d_model=32, num_heads=2, num_layers=2,
                                  mlp_dim=64, block_len=8, scan_group_blocks=group)
    model = Decoder(cfg, nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    loss = lambda p: scan.mean_loss(p, graphdef, model.init_memory(2),
                                    dict(inputs=tokens, targets=tokens), cfg)[0]
    results[group] = jax.jit(jax.value_and_grad(loss))(params)
  for group in (-1, 4):
    np.testing.assert_allclose(results[group][0], results[0][0], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(results[group][1]), jax.tree.leaves(results[0][1])):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_group_size_rule():
  assert scan.scan_group_size(256, -1) == 16
  assert scan.scan_group_size(16, -1) == 4
  assert scan.scan_group_size(12, -1) == 3
  assert scan.scan_group_size(7, -1) == 1  # prime: no grouping possible
  assert scan.scan_group_size(12, 0) == 1
  with pytest.raises(ValueError, match="model.scan_group_blocks=5"):
    scan.scan_group_size(12, 5)
