"""Data-parallel placement with `jax.sharding`, and multi-process start-up (`jax.distributed`).

A `Placement` is a one-axis device mesh ("data"). Every array the loop keeps (weights, optimizer state,
the dataset, the loop carry) is replicated across the mesh; each batch is sharded along the mesh axis
inside the compiled step (`constrain`), so XLA's SPMD partitioner runs each device's share of the batch
and all-reduces the gradients. With one device, `Placement` is None and nothing here is used.

Multi-process (`nnctl train --coordinator HOST:PORT --num-processes N --process-id I`, or the
NNCTL_COORDINATOR / NNCTL_NUM_PROCESSES / NNCTL_PROCESS_ID environment variables): `initialize` calls
`jax.distributed.initialize` (with gloo collectives on CPU) before anything else touches JAX; the mesh then
spans every process's devices and each process feeds the same (replicated) data. Only process 0 writes
the run directory (`is_primary`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nnctl.errors import NnctlError

AXIS = "data"


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None) -> bool:
    """Start jax.distributed when a coordinator is given (arguments, else NNCTL_* env vars). True if started."""
    coordinator = coordinator or os.environ.get("NNCTL_COORDINATOR")
    if num_processes is None and os.environ.get("NNCTL_NUM_PROCESSES"):
        num_processes = int(os.environ["NNCTL_NUM_PROCESSES"])
    if process_id is None and os.environ.get("NNCTL_PROCESS_ID"):
        process_id = int(os.environ["NNCTL_PROCESS_ID"])
    if coordinator is None:
        if num_processes not in (None, 1):
            raise NnctlError("--num-processes needs --coordinator HOST:PORT (the address of process 0)")
        return False
    if num_processes is None or process_id is None:
        raise NnctlError("--coordinator needs --num-processes N and --process-id I (0 <= I < N)")
    if not 0 <= process_id < num_processes:
        raise NnctlError(f"--process-id must be in [0, {num_processes}), got {process_id}")

    # CPU collectives (only the CPU client reads this; GPUs use NCCL). Must precede any backend start.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    return True


def is_primary() -> bool:
    """Process 0 (or the only process) writes files; other processes compute only."""
    return jax.process_index() == 0


def select_devices(devices: Any) -> list:
    """`devices: all | N` -> the devices to train on (over all processes when distributed)."""

    avail = jax.devices()
    if devices == "all":
        return avail
    n = int(devices)
    if n > len(avail):
        raise NnctlError(
            f"train.devices is {n} but only {len(avail)} {jax.default_backend()} device(s) are visible "
            f"(on CPU, XLA_FLAGS=--xla_force_host_platform_device_count={n} before starting)"
        )
    if jax.process_count() > 1 and n != len(avail):
        raise NnctlError(f"with {jax.process_count()} processes use train.devices: all (got {n})")
    return avail[:n]


@dataclass(frozen=True, eq=False)
class Placement:
    mesh: Any

    @property
    def size(self) -> int:
        return self.mesh.devices.size

    @property
    def replicated(self):
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def batch(self):
        return NamedSharding(self.mesh, PartitionSpec(AXIS))

    def constrain(self, tree):
        """Inside jit: shard the leading (batch) axis of every leaf across the mesh."""
        return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, self.batch), tree)

    def put(self, tree):
        """Host arrays (identical in every process) -> global arrays replicated over the mesh."""

        def one(a):
            a = np.asarray(a)
            return jax.make_array_from_callback(a.shape, self.replicated, lambda idx: a[idx])

        return jax.tree.map(one, tree)

    def put_windows(self, tree):
        """Streamed windows `(k, batch, ...)` -> global arrays with the batch axis sharded: each device is
        sent only its slice of every batch."""

        spec = NamedSharding(self.mesh, PartitionSpec(None, AXIS))

        def one(a):
            a = np.asarray(a)
            return jax.make_array_from_callback(a.shape, spec, lambda idx: a[idx])

        return jax.tree.map(one, tree)


def placement(devices: Any, batch_size: int) -> Placement | None:
    """None for single-device training, else a mesh over the selected devices."""

    if devices in (1, "1") and jax.process_count() == 1:
        return None
    devs = select_devices(devices)
    if len(devs) == 1:
        return None
    if batch_size % len(devs):
        raise NnctlError(
            f"train.batch_size ({batch_size}) must be a multiple of the number of devices "
            f"({len(devs)}) for data-parallel training"
        )
    return Placement(Mesh(np.array(devs), (AXIS,)))


def scratch_run_dir():
    """Where a non-primary process puts its (discarded) copy of the run files: a fresh temporary directory."""
    return Path(tempfile.mkdtemp(prefix="nnctl-process-"))
