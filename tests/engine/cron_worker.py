"""A real worker process whose wall clock is a file the test writes, for cron tests.

`python -m tests.engine.cron_worker DB CLOCK [--hang STAGE MARKER] [--declare]` runs the
engine (`conductor.engine.runtime.Engine`, as `conductor worker` does) on DB until SIGTERM;
its clock reads the stored timestamp in the file CLOCK on every look, so the test moves
time for every process at once. The task `noop` is registered; with `--declare`, the
schedule `from-code` (every minute) is declared in code, as an application's would be.

`--hang STAGE MARKER` stops the process in the middle of firing a slot, at a known point,
so a SIGKILL lands there on any machine: it writes MARKER and sleeps for good at

* `deciding`  - the fire is decided (its events built), nothing is appended yet;
* `folding`   - inside the append's transaction, under the ledger's lock, as the fold
                checks the slot (nothing committed);
* `committed` - the fire and its job are committed, before anything else is done.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import time
from pathlib import Path
from typing import Any

from conductor.domain.clock import unstamp
from conductor.domain.config import Settings, WorkerConfig
from conductor.domain.registry import Registry


class FileClock:
    """`now` is the timestamp the test last wrote to `path` (atomically, by rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> dt.datetime:
        return unstamp(self.path.read_text().strip())


def _hang(marker: Path) -> None:
    marker.write_text("here\n")
    while True:
        time.sleep(3600)


def arm(stage: str, marker: Path) -> None:
    if stage == "deciding":
        from conductor.domain import cron_decisions

        decide = cron_decisions.fire

        def deciding(*args: Any, **kwargs: Any) -> Any:
            decide(*args, **kwargs)
            _hang(marker)

        cron_decisions.fire = deciding  # type: ignore[assignment]
    elif stage == "folding":
        from projections import controls

        fold = controls.FOLDS["schedule_fired"]

        def folding(*args: Any) -> Any:
            fold(*args)
            _hang(marker)

        controls.FOLDS["schedule_fired"] = folding
    elif stage == "committed":
        from conductor.ledger.postgres.ledger import PostgresLedger
        from conductor.ledger.sqlite.ledger import SqliteLedger

        for cls in (SqliteLedger, PostgresLedger):
            original = cls.append

            def append(self: Any, events: Any, _original: Any = original) -> Any:
                recorded = _original(self, events)
                if any(rec.type == "schedule_fired" for rec in recorded):
                    _hang(marker)
                return recorded

            cls.append = append  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown stage {stage!r}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("clock", type=Path)
    parser.add_argument("--hang", nargs=2, metavar=("STAGE", "MARKER"))
    parser.add_argument("--declare", action="store_true")
    args = parser.parse_args()
    from conductor.engine.runtime import Engine

    registry = Registry()
    registry.task("noop")(lambda **_: None)
    if args.declare:
        registry.periodic("from-code", cron="* * * * *", payload={"task": "noop"})
    if args.hang:
        arm(args.hang[0], Path(args.hang[1]))
    config = WorkerConfig(concurrency=2, poll_interval=0.05, maintenance_interval=0.05)
    engine = Engine(Settings(db=args.db), config, registry=registry, clock=FileClock(args.clock))
    signal.signal(signal.SIGTERM, lambda *_: engine.request_stop())
    engine.start()
    return engine.run()


if __name__ == "__main__":
    sys.exit(main())
