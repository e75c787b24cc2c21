"""Bad input to `conductor dashboard`: one line on stderr naming what was wrong and what
is expected, exit 2 for usage errors (1 for a database that is not there), nothing
listening and nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor import Conductor
from tests.conftest import db_snapshot, run_cli


@pytest.fixture
def existing(tmp_path: Path) -> Path:
    path = tmp_path / "conductor.db"
    with Conductor(str(path)) as app:
        app.enqueue({"task": "noop"})
    return path


def refused(
    db: Path, *args: str, code: int, mentions: list[str], env: dict[str, str] | None = None
) -> None:
    before = db_snapshot(db)
    done = run_cli(
        "dashboard", *args, db=db, env={"CONDUCTOR_DASHBOARD_TOKEN": "", **(env or {})}, timeout=60
    )
    assert done.code == code, done
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr
    for words in mentions:
        assert words in done.stderr
    assert done.stdout == ""
    assert db_snapshot(db) == before


def test_a_port_out_of_range_is_refused(existing: Path) -> None:
    refused(existing, "--port", "70000", code=2, mentions=["--port", "70000"])
    refused(existing, "--port", "eighty", code=2, mentions=["--port", "eighty"])


def test_an_unreadable_token_file_is_refused(existing: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"
    refused(existing, "--token-file", str(missing), code=2, mentions=["cannot read token file"])


def test_a_short_or_empty_token_is_refused(existing: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice:short\n")
    refused(existing, "--token-file", str(tokens), code=2, mentions=["line 1", "at least 16"])
    tokens.write_text("# nobody\n\n")
    refused(existing, "--token-file", str(tokens), code=2, mentions=["no token in"])
    tokens.write_text("al ice:0123456789abcdef0123\n")
    refused(existing, "--token-file", str(tokens), code=2, mentions=["invalid token name"])
    refused(
        existing,
        code=2,
        mentions=["CONDUCTOR_DASHBOARD_TOKEN", "at least 16"],
        env={"CONDUCTOR_DASHBOARD_TOKEN": "tiny"},
    )


def test_a_network_bind_without_credentials_is_refused(existing: Path) -> None:
    refused(
        existing, "--host", "192.0.2.1", code=2, mentions=["without credentials", "--token-file"]
    )
    refused(existing, "--host", "example.com", code=2, mentions=["without credentials"])


def test_a_database_that_does_not_exist_is_refused_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    done = run_cli("dashboard", "--port", "0", db=missing, timeout=60)
    assert done.code == 1
    assert done.stderr.count("\n") == 1
    assert "missing.db" in done.stderr
    assert not missing.exists()


def test_a_port_already_taken_is_one_line(existing: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused(existing, "--port", str(port), code=1, mentions=["cannot listen", str(port)])
