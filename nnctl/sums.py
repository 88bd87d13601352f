"""SHA-256 manifests: every file a run writes and later trusts is checked on every read.

Each directory holding such files has a `SHA256SUMS` file in the format of `sha256sum` (`<hex>  <name>` per
line), so `cd RUN_DIR && sha256sum -c SHA256SUMS` checks a run by hand too. Writing a file (`save`) is:

    1. the new digest is added to the manifest next to the old one (manifest written atomically),
    2. the file itself is written atomically (temporary name, fsync, rename, directory fsync),
    3. the old digest is dropped from the manifest (written atomically again).

So a process killed at any instant leaves a file that matches one of the digests listed for it: a mismatch
means the bytes changed after they were written (a flipped bit, a bad disk, an edit). A file the manifest
does not list (run directories of nnctl before 0.3, files copied in by hand) is read unchecked.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from nnctl.errors import RunDirError

MANIFEST = "SHA256SUMS"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same directory, fsync, rename over `path`, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _fsync_dir(d: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_manifest(d: Path) -> list[tuple[str, str]]:
    """(digest, name) pairs of a directory's manifest; [] when there is none."""
    m = Path(d) / MANIFEST
    try:
        text = m.read_bytes().decode("ascii")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise RunDirError(f"{m} is damaged ({type(e).__name__}): the files it lists cannot be checked") from None
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        mt = _LINE.match(line)
        if mt is None:
            raise RunDirError(f"{m}:{i} is damaged (not '<sha256>  <name>'): the files it lists cannot be checked")
        out.append((mt.group(1), mt.group(2)))
    return out


def _write_manifest(d: Path, entries: list[tuple[str, str]]) -> None:
    atomic_write(Path(d) / MANIFEST, "".join(f"{h}  {n}\n" for h, n in entries).encode("ascii"))


def _edit(d: Path, fn: Callable[[list[tuple[str, str]]], list[tuple[str, str]]]) -> None:
    before = read_manifest(d)
    after = fn(before)
    if after != before:
        _write_manifest(d, after)


def save(path: Path, data: bytes) -> None:
    """Write `path` atomically and record its SHA-256 in its directory's manifest (see the module doc)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name, new = path.name, digest(data)
    _edit(path.parent, lambda es: es + [(new, name)] if (new, name) not in es else es)
    atomic_write(path, data)
    _edit(path.parent, lambda es: [(h, n) for h, n in es if n != name or h == new])


def forget(path: Path) -> None:
    """Delete a checksummed file and its manifest entry."""
    path = Path(path)
    path.unlink(missing_ok=True)
    _edit(path.parent, lambda es: [(h, n) for h, n in es if n != path.name])


def load(path: Path) -> bytes:
    """The bytes of `path`, checked against its manifest entry; a mismatch is a RunDirError naming the file."""
    path = Path(path)
    data = path.read_bytes()  # FileNotFoundError / OSError: the caller words it
    listed = [h for h, n in read_manifest(path.parent) if n == path.name]
    if listed and digest(data) not in listed:
        raise RunDirError(
            f"{path} is damaged: its SHA-256 is not the one recorded in {path.parent / MANIFEST} when it was "
            f"written (a flipped bit, a disk error or an edit); it cannot be trusted"
        )
    return data


def check_dir(d: Path) -> list[str]:
    """Problems with the files a directory's manifest lists (damaged or missing), [] when all are good."""
    try:
        entries = read_manifest(d)
    except RunDirError as e:
        return [str(e)]
    out = []
    for name in dict.fromkeys(n for _, n in entries):
        try:
            load(Path(d) / name)
        except FileNotFoundError:
            out.append(f"{Path(d) / name} is missing")
        except (RunDirError, OSError) as e:
            out.append(str(e))
    return out
