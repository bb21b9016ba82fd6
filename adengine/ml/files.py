"""Model files written once by whichever process gets there first: a file lock and atomic renames."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(target: Path) -> Iterator[None]:
    """Hold an exclusive lock for writing ``target``; other processes wait, then see the finished file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def temp_dir_for(target: Path) -> Path:
    """A new, private folder beside ``target`` to write into before ``publish``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + ".tmp-"))


def temp_file_for(target: Path) -> Path:
    """A new, private file beside ``target`` to write into before ``publish``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".tmp-")
    os.close(fd)
    return Path(name)


def publish(tmp: Path, target: Path) -> Path:
    """Move a finished ``tmp`` into place in one rename (readers see all of it or none)."""
    if target.is_dir():
        shutil.rmtree(target)
    tmp.replace(target)
    return target
