"""Security by default (docs/security.md): private files, loopback listeners, payloads
kept out of logs and spans, JSON only, tasks only from the registry."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.ledger import wakeup
from tests.conftest import CONDUCTOR

MARKER = "private-card-4111111111111111"


@pytest.mark.sqlite_only("file modes of the database, its -wal and -shm")
def test_database_files_and_the_wake_up_directory_are_private(db_path: Path) -> None:
    with Conductor(settings=Settings(db=str(db_path))) as app:
        app.enqueue({"task": "noop"})
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{db_path}{suffix}")
            assert stat.S_IMODE(part.stat().st_mode) == 0o600, part
        listener = wakeup.Listener(str(db_path))
        waiter = wakeup.finished_listener(str(db_path))
        try:
            for kind in ("wake", "finished"):
                folder = wakeup.directory(str(db_path), kind)
                assert stat.S_IMODE(folder.stat().st_mode) == 0o700, kind
        finally:
            listener.close()
            waiter.close()


def test_payload_contents_never_reach_the_worker_logs(tmp_path: Path) -> None:
    for log_format, logged in (("text", "job 1 send_email"), ("json", '"job": 1')):
        db = tmp_path / f"{log_format}.db"
        with Conductor(settings=Settings(db=str(db))) as app:
            app.enqueue({"task": "send_email", "email": MARKER})
            app.enqueue({"task": "fail", "message": "boom", "card": MARKER}, max_retries=0)
            app.enqueue({"task": "send_email", "wrong": MARKER}, max_retries=0)
        done = subprocess.run(
            [CONDUCTOR, "worker", "--db", str(db), "--burst", "--log-format", log_format],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert logged in done.stderr  # every transition was logged...
        assert MARKER not in done.stderr  # ...without the payload
        assert MARKER not in done.stdout


def test_payload_contents_never_reach_span_attributes(db: str) -> None:
    done = subprocess.run(
        [
            CONDUCTOR,
            "enqueue",
            "--db",
            db,
            "--payload",
            f'{{"task": "send_email", "email": "{MARKER}"}}',
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "OTEL_TRACES_EXPORTER": "console"},
    )
    assert done.returncode == 0
    assert '"send default"' in done.stderr
    assert MARKER not in done.stderr


def test_a_dotted_path_is_an_unknown_task_and_is_never_imported(db: str, tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    module = tmp_path / "evil_module.py"
    module.write_text(f"open({str(marker)!r}, 'w').write('x')\ndef run(**kw): pass\n")
    with Conductor(settings=Settings(db=db)) as app:
        job_id = app.enqueue({"task": "evil_module.run"}, max_retries=0)
    paths = [str(tmp_path), os.environ.get("PYTHONPATH")]
    done = subprocess.run(
        [CONDUCTOR, "worker", "--db", db, "--burst", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
        # The evil module is importable; conductor is still the one under test (PYTHONPATH
        # may name its tree: replacing it would run whichever conductor is installed).
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))},
    )
    assert done.returncode == 0
    assert not marker.exists()
    with Conductor(settings=Settings(db=db)) as app:
        row = app.job(job_id)
    assert row["status"] == "failed"
    assert "unknown task 'evil_module.run'" in (row["last_error"] or "")


def test_no_module_of_conductor_uses_pickle_or_marshal() -> None:
    root = Path(__file__).resolve().parents[2]
    for path in [*root.glob("conductor/**/*.py"), *root.glob("projections/**/*.py")]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"pickle", "marshal", "shelve", "dill"}, path
