"""Real small filesystems for the disk tests: a tmpfs to fill up or remount read-only."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (skips the test where mounting is refused)."""
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, capture_output=True)


def fill(path: Path) -> None:
    """Write `path` until the filesystem has not one more block."""
    with path.open("wb", buffering=0) as out:
        for chunk in (1 << 16, 1 << 12, 1 << 9):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * chunk)
    assert os.statvfs(path.parent).f_bavail == 0
    with (
        pytest.raises(OSError, match="No space") as full,
        (path.parent / "probe").open("wb", buffering=0) as f,
    ):
        f.write(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC


def free(path: Path) -> None:
    """Give back what `fill` took."""
    path.unlink()
    (path.parent / "probe").unlink(missing_ok=True)
