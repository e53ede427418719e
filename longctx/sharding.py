"""The device mesh from config and the shardings of the train state and batches.

Data parallel from the start: one mesh axis 'data'; the batch (and any per-example memory carried
across steps) is split along it, parameters and optimizer state are replicated.
"""
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(mesh_cfg) -> Mesh:
  """mesh.data = -1 takes every device."""
  devices = jax.devices()
  data = mesh_cfg.data if mesh_cfg.data > 0 else len(devices)
  if data > len(devices) or len(devices) % data:
    raise ValueError(f"mesh.data={mesh_cfg.data} does not fit the {len(devices)} available devices")
  return Mesh(np.asarray(devices[:data]), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over 'data'."""
  return NamedSharding(mesh, P("data"))


def check_batch_divisible(batch_size: int, mesh: Mesh, field="data.batch_size"):
  n = mesh.shape["data"]
  if batch_size % n:
    raise ValueError(f"{field}={batch_size} is not divisible by the mesh's data axis ({n} devices)")


def state_shardings(state, mesh: Mesh):
  """Replicates everything except the per-example memory (batch axis first)."""
  shard = {k: jax.tree.map(lambda _: replicated(mesh), v) for k, v in state.items()}
  shard["memory"] = jax.tree.map(lambda _: batch_sharded(mesh), state["memory"])
  return shard
