"""Data for the longctx tasks: tokenizers (tokenizers.py) and the passkey retrieval task (passkey.py).

Everything here is pure numpy so that data generation never competes with the model for an
accelerator and never needs TensorFlow; arrays are handed to JAX only by the training loop.
"""
