"""JAX process configuration that nnctl applies once, before compiling anything.

* The persistent compilation cache is on by default, in a user cache directory: `$NNCTL_CACHE_DIR`,
  else `$XDG_CACHE_HOME/nnctl/jax`, else `~/.cache/nnctl/jax`. `NNCTL_CACHE_DIR=off` (or `none`, `0`)
  turns it off. Every compiled program is cached (no minimum compile time), so running the same spec again
  loads its programs from disk instead of compiling them.
* `configure()` also has JAX lower its random-bit hash (threefry2x32, 20 rounds) with the rounds unrolled on
  CPU, as JAX already does on every other platform, instead of as a 5-iteration XLA while loop whose every
  iteration is a dozen small kernels. The bits are the same (the same operations); only the kernels a program
  runs change. Every epoch draws its permutation and keys from the hash, so on a tiny model that loop was a
  large part of an epoch (`bench/RESULTS.md`, the paired run of issue 12's last re-run). It goes through JAX's
  internal lowering registry: with a JAX whose internals moved, nothing changes (nothing fails; the hash keeps
  its loop). `NNCTL_XLA_DEFAULTS=off` leaves JAX's lowering alone, like nnctl's other XLA:CPU settings
  (`nnctl.cpucfg`).
* `configure()` is idempotent. It also counts the compilations that asked the persistent cache and those
  it served (`CacheCount`), so a run can say its programs came from the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import jax

from nnctl import cpucfg

try:  # JAX internals for `unrolled_threefry`: the lowering registry and the hash's primitive
    from jax._src.interpreters import mlir as _mlir
    from jax._src.random import threefry2x32 as _threefry
except ImportError:  # pragma: no cover - a JAX whose internals moved
    _mlir = _threefry = None  # type: ignore[assignment]

CACHE_ENV = "NNCTL_CACHE_DIR"
_OFF = {"", "0", "off", "none", "false", "no"}
_done = False
_REQUESTS = "/jax/compilation_cache/compile_requests_use_cache"
_HITS = "/jax/compilation_cache/cache_hits"
_counts = {_REQUESTS: 0, _HITS: 0}


@dataclass(frozen=True)
class CacheCount:
    """Compilations that asked the persistent cache, and those it served (since the process started)."""

    requests: int
    hits: int

    def since(self, earlier: CacheCount) -> CacheCount:
        return CacheCount(self.requests - earlier.requests, self.hits - earlier.hits)


def cache_count() -> CacheCount:
    return CacheCount(_counts[_REQUESTS], _counts[_HITS])


def _count(event: str, **kwargs: object) -> None:
    if event in _counts:
        _counts[event] += 1


def cache_dir() -> Path | None:
    """Where compiled programs are cached, or None when the cache is turned off."""
    raw = os.environ.get(CACHE_ENV)
    if raw is not None:
        return None if raw.strip().lower() in _OFF else Path(raw).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nnctl" / "jax"


def configure() -> None:
    """Turn on the persistent compilation cache (unless disabled). Safe to call many times."""
    global _done
    if _done:
        return
    _done = True
    unrolled_threefry()  # the same random bits, without a while loop per draw on CPU
    jax.monitoring.register_event_listener(_count)
    d = cache_dir()
    if d is None:
        return
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # read-only home: run without a cache rather than fail
    # the user's own JAX setting wins; jax.config's options are attributes it adds at runtime
    if jax.config.jax_compilation_cache_dir is None:  # type: ignore[attr-defined]
        jax.config.update("jax_compilation_cache_dir", str(d))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def device_memory_limit() -> int | None:
    """`bytes_limit` of the first local device's memory statistics; None where the backend reports none
    (XLA:CPU)."""
    dev = jax.local_devices()[0]
    try:
        stats = dev.memory_stats() or {}
    except Exception:  # some backends do not implement it
        stats = {}
    return int(stats["bytes_limit"]) if stats.get("bytes_limit") else None


def unrolled_threefry() -> bool:
    """Lower threefry2x32 with unrolled rounds on CPU (see above). True when set."""
    if cpucfg.turned_off() or _mlir is None:
        return False
    unrolled = getattr(_threefry, "_threefry2x32_lowering_rule", None)  # JAX's rule for every other platform
    primitive = getattr(_threefry, "threefry2x32_p", None)
    if unrolled is None or primitive is None:
        return False
    _mlir.register_lowering(primitive, unrolled, platform="cpu", inline=False)
    return True
