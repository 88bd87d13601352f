"""JAX process configuration that nnctl applies once, before compiling anything.

* The persistent compilation cache is on by default, in a user cache directory: `$NNCTL_CACHE_DIR`,
  else `$XDG_CACHE_HOME/nnctl/jax`, else `~/.cache/nnctl/jax`. `NNCTL_CACHE_DIR=off` (or `none`, `0`)
  turns it off. Every compiled program is cached (no minimum compile time), so running the same spec again
  loads its programs from disk instead of compiling them.
* `configure()` is idempotent. It also counts the compilations that asked the persistent cache and those
  it served (`CacheCount`), so a run can say its programs came from the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import jax

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
