"""Pure jnp math (no Flax): attention and masks, RoPE, linear-attention memory."""
