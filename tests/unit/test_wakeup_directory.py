"""The wake-up directory names one database file, however the path is written, and the
cache of resolved names never mixes up two files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conductor.ledger import wakeup


def test_the_same_file_by_any_spelling_shares_one_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "jobs.db"
    (tmp_path / "link").symlink_to(tmp_path)
    monkeypatch.chdir(tmp_path)
    spellings = [
        str(db),
        "jobs.db",
        "./jobs.db",
        f"file:{db}?mode=rw",
        str(tmp_path / "link" / "jobs.db"),
    ]
    assert len({wakeup.directory(spelling) for spelling in spellings}) == 1


def test_a_relative_path_follows_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    in_a = wakeup.directory("jobs.db")
    monkeypatch.chdir(tmp_path / "b")
    in_b = wakeup.directory("jobs.db")  # cached for a's "jobs.db": must not be reused
    assert in_a != in_b
    assert in_b == wakeup.directory(os.path.join(tmp_path, "b", "jobs.db"))
