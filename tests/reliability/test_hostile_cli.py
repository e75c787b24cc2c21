"""Hostile CLI input (issue 6, test 8): hypothesis drives the installed `conductor`
executable with valid option names and hostile values, and a regression corpus
(`hostile_corpus.json`) replays argv that once broke it.

The property, for every run: the exit code is 0, 1 or 2 (0 only for valid input, and
always 0 for input known to be valid); no "Traceback" anywhere; on failure stderr is exactly
one `error: ` line; the seeded database is unchanged unless a write command succeeded; no
other file appears or changes (a missing `--db` path is never created by a read command, a
directory or text file given as `--db` is left exactly as it was).

`worker`, `dashboard`, `top` and `events --follow`/`stats --watch` run until stopped, so
they only get arguments that are refused before they start (or `--help`); `demo` and
`bench` do real work and are left out.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from conductor.cli import commands
from conductor.domain.events import EVENT_TYPES
from tests.cli.support import every_state_db
from tests.conftest import CONDUCTOR, db_snapshot

pytestmark = pytest.mark.sqlite_only(
    "argv parsing does not depend on the backend; 'changed nothing' digests a SQLite file"
)

CORPUS = Path(__file__).with_name("hostile_corpus.json")

NOT_UTF8 = "\udcff"
"""The byte 0xff as Python spells it in a str; arguments go to the process as raw bytes."""
HUGE = "x" * 100_000
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - an address the dashboard must refuse here
DEEP_OPEN = '{"task": "a", "x": ' + "[" * 100_000
"""100,000-deep JSON, unclosed: closing it too would pass Linux's 128 KiB-per-argument cap."""
DEEP_CLOSED = '{"task": "a", "x": ' + "[" * 60_000 + "]" * 60_000 + "}"

WRITE_COMMANDS = {
    "enqueue",
    "cancel",
    "retry",
    "replay",
    "cron add",
    "cron pause",
    "cron resume",
    "cron remove",
    "queue pause",
    "queue resume",
    "queue limit",
}
CREATING = {"enqueue", "cron add"}
"""Commands that create a missing --db."""
EXCLUDED = {"demo", "bench", "copy"}
"""Not generated: `copy` takes two databases and no --db (tests/postgres/test_copy.py
checks its refusals)."""
GENERATED = [
    "enqueue",
    "jobs",
    "show",
    "history",
    "events",
    "stats",
    "cancel",
    "retry",
    "batch",
    "replay",
    "audit verify",
    "metrics",
    "top",
    "worker",
    "migrate",
    "result",
    "cron add",
    "cron list",
    "cron pause",
    "cron resume",
    "cron remove",
    "queues",
    "queue pause",
    "queue resume",
    "queue limit",
    "dashboard",
]

SEEDED = "seeded.db"
"""The database every example starts from: a job in every status (`every_state_db`)."""
FILES = {
    "good.jsonl": b'{"task": "send_email"}\n{"task": "resize"}\n',
    "empty.jsonl": b"",
    "deep.jsonl": b'{"task": "a", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
    "notutf8.jsonl": b'{"task": "\xff\xfe"}\n',
    "nan.jsonl": b'{"task": "a", "x": NaN}\n',
    "notes.txt": b"shopping list\n- eggs\n" * 50,
}
DB_KINDS = ["seeded", "directory", "text", "missing", "empty", "notutf8", "none", "huge"]
"""`--db` kinds generated; "huge" is a 100 KB file name (ENAMETOOLONG once gave a
traceback: the corpus keeps those cases as `*-db-huge-name`)."""


# -- values: (text, valid) where valid is True, False or None (either outcome is fine) -----
Value = tuple[str, bool | None]


def bad(*texts: str) -> list[Value]:
    return [(t, False) for t in texts]


def good(*texts: str) -> list[Value]:
    return [(t, True) for t in texts]


def maybe(*texts: str) -> list[Value]:
    return [(t, None) for t in texts]


BAD_NUMBERS = bad(
    "",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "-1",
    "1e400",
    "1.5",
    "0x10",
    "one",
    str(2**64),
    str(-(2**64)),
    str(2**63),
    "9" * 5000,
    HUGE,
    NOT_UTF8,
    "\uff11",  # a full-width digit one
)
LIMITS = [*good("0", "1", "5", str(2**63 - 1)), *BAD_NUMBERS]
KNOWN_IDS = [*good("1", "2", "6"), *bad("999", str(2**63 - 1), "0"), *BAD_NUMBERS]
ACTION_IDS = [*maybe("1", "3", "5"), *bad("999", str(2**63 - 1), "0"), *BAD_NUMBERS]
RESULT_IDS = [*good("2"), *bad("1", "3", "4", "5", "999", str(2**63 - 1), "0"), *BAD_NUMBERS]
"""Only job 2 of the seeded database completed: `result` of the others exits 1 (failed,
cancelled, unknown) or 3 (not finished)."""
BAD_DURATIONS = bad(
    "",
    "NaN",
    "nans",
    "inf",
    "infs",
    "-5m",
    "-0.001s",
    "1e400",
    "1e400s",
    "18446744073709551616s",
    "99999999999999999999d",
    "5 minutes",
    HUGE,
    NOT_UTF8,
)
DELAYS = [*good("30s", "5m", "0", "2h"), *BAD_DURATIONS]
BAD_INTERVALS = [*BAD_DURATIONS, *bad("0", "0s", "50ms", "99ms")]
INTERVALS = [*good("1s", "100ms", "2h"), *BAD_INTERVALS]
TIMES = [
    *good("2030-01-01T00:00:00Z", "1h", "2020-01-01"),
    *bad(
        "",
        "NaN",
        "inf",
        "tomorrow",
        "2026-13-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",
        "1e400h",
        "-1h",
        HUGE,
        NOT_UTF8,
    ),
    *maybe("0001-01-01T00:00:00+01:00", "0001-01-01", "9999-12-31T23:59:59.999999Z"),
]
FILTERS = [
    *good("send_email", "default", "nope"),
    *maybe("", HUGE, "\u202e\U0001f4a5", "%", "_", "' OR 1=1 --"),
    *bad(NOT_UTF8, "a" + NOT_UTF8),
]
QUEUES = [*good("default", "reports", "a.b:c-d"), *bad("", "a/b", "x" * 101, HUGE, NOT_UTF8)]
PRIORITIES_ = [*good("high", "low", "MEDIUM"), *bad("", "urgent", "0", HUGE, NOT_UTF8)]
MAX_RETRIES = [*good("0", "3"), *bad("100000"), *BAD_NUMBERS]
UNIQUE_KEYS = [
    *good("k", "report:2026-12-07", "\u043a\u043b\u044e\u0447"),
    *bad("", "   ", "x" * 201, "a\tb", "a\x7fb", HUGE, NOT_UTF8),
]
UNIQUE_FOR = [*good("10m", "1s", "1d"), *bad("0s", "0", "1.5s", "500ms", "4000d"), *BAD_DURATIONS]
OPERATORS = [*good("alice", "ops team"), *bad("", " ", NOT_UTF8)]
CONCURRENCIES = [
    *good("1", "2", "none", "1000000"),
    *bad("", "0", "-1", "1.5", "two", "1000001", "\u0663", HUGE, NOT_UTF8),
]
RATES = [
    *good("100/m", "5/s", "1/hour", "none", "3600/h"),
    *bad("", "0/m", "10/d", "100", "/m", "-1/s", "1.5/s", "1000001/s", HUGE, NOT_UTF8),
]
STATUSES = [*good("pending", "failed", "in_progress"), *bad("", "PENDING?", "done", NOT_UTF8)]
MOVABLE = {"cancel": ("pending", "claimed", "in_progress"), "retry": ("failed", "cancelled")}
ACTION_FILTERS = {
    "--status": STATUSES,
    "--task": FILTERS,
    "--queue": FILTERS,
    "--since": TIMES,
    "--until": TIMES,
    "--reason": FILTERS,
    "--by": [*good("alice"), *bad("", " ", NOT_UTF8), *maybe(HUGE, "\u202e\U0001f4a5")],
}
"""A filtered cancel or retry: the filters choose, `--reason` and `--by` are recorded."""
BATCHES = [
    *bad("", "nope", "20261207-103000-3fa2c", "20261207-103000-3fa2cg", HUGE, NOT_UTF8),
    *bad("20200101-000000-abcdef"),  # well formed, but no event carries it: exit 1
]
TYPES = [*good(*EVENT_TYPES[:3]), *bad("", "job_exploded", NOT_UTF8, HUGE)]
PAYLOADS = [
    *good('{"task": "send_email"}', '{"task": "t", "n": 1, "s": "\u00e9"}'),
    *bad(
        "",
        "NaN",
        "null",
        "[]",
        '"task"',
        '{"task": "a", "x": NaN}',
        '{"task": "a", "x": Infinity}',
        '{"task": 1}',
        '{"task": ""}',
        HUGE,
        DEEP_OPEN,
        DEEP_CLOSED,
        '{"task": "' + NOT_UTF8 + '"}',
    ),
    *maybe(
        '{"task": "a", "n": 1e400}',
        '{"task": "a", "n": ' + str(2**64) + "}",
        '{"task": "\\ud800"}',
        '{"task": "a", "k": "\\udcff"}',
        '{"task": "os.system"}',
        '{"task": "' + "t" * 100_000 + '"}',
        '{"task": "a", "task": "b"}',
    ),
]
FILES_ARG = [
    *good("good.jsonl"),
    *bad(
        "empty.jsonl",
        "deep.jsonl",
        "notutf8.jsonl",
        "nan.jsonl",
        "missing.jsonl",
        "data",
        "",
        "-",
        NOT_UTF8,
        HUGE,
    ),
]
APPS = [*maybe("os", "json"), *bad("", "no_such_module_xyz", HUGE, NOT_UTF8)]
SCHEDULE_NAMES = [*good("nightly", "a.b:c-d"), *bad("", "a b", "x" * 101, HUGE, NOT_UTF8)]
EXPRESSIONS = [
    *good("0 3 * * *", "@daily", "*/5 * * * MON-FRI"),
    *bad("", "61 * * * *", "* * * *", "0 0 30 2 *", "H * * * *", "R * * * *", HUGE, NOT_UTF8),
]
ZONES = [*good("UTC", "Europe/Paris"), *bad("", "Mars/Base", "../etc/passwd", HUGE, NOT_UTF8)]
CRON_ADD = {
    "--tz": ZONES,
    "--queue": QUEUES,
    "--priority": PRIORITIES_,
    "--max-retries": MAX_RETRIES,
    "--missed": [*good("none", "latest", "all"), *bad("", "some", NOT_UTF8)],
    "--catch-up-max": [*good("1", "10"), *bad("0", "1001"), *BAD_NUMBERS],
    "--by": [*good("alice"), *maybe("", HUGE), *bad(NOT_UTF8)],
}


@st.composite
def values(draw: st.DrawFn, pool: list[Value]) -> Value:
    return draw(st.sampled_from(pool))


@attrs.frozen
class Case:
    """One command line: arguments after `conductor` (before `--db`), the kind of `--db`
    and whether the input is valid (True), invalid (False) or either (None)."""

    args: tuple[str, ...]
    db: str
    valid: bool | None

    @property
    def command(self) -> str:
        if self.args[0] in ("audit", "queue", "cron") and len(self.args) > 1:
            return " ".join(self.args[:2])
        return self.args[0]


def combine(*flags: bool | None) -> bool | None:
    if False in flags:
        return False
    return True if all(f is True for f in flags) else None


@st.composite
def options(draw: st.DrawFn, spec: dict[str, list[Value]]) -> tuple[list[str], bool | None]:
    """A subset of `spec`'s options, each with a value from its pool."""
    chosen = draw(st.lists(st.sampled_from(sorted(spec)), unique=True, max_size=len(spec)))
    args: list[str] = []
    flags: list[bool | None] = []
    for name in chosen:
        text, valid = draw(values(spec[name]))
        args += [name, text]
        flags.append(valid)
    return args, combine(*flags)


def db_valid(command: str, kind: str) -> bool | None:
    if kind == "seeded":
        return True
    if kind in ("missing", "none"):
        return command in CREATING
    return False


@st.composite
def migrate_options(draw: st.DrawFn, flags: list[str]) -> tuple[list[str], bool]:
    """`migrate`'s options, never --apply: it creates a missing database, which the
    property forbids here. Roles are PostgreSQL's, so a SQLite --db refuses them."""
    role = draw(st.sampled_from(["", "--grant", "--print-grants"]))
    if not role:
        return flags, True
    text, _ = draw(values([*good("conductor_app"), *bad("", "Bad Role", HUGE, NOT_UTF8)]))
    return [*flags, role, text], False


def unique_options_fit(args: list[str]) -> bool:
    """--unique-for is the scope of a --unique-key, and a key goes with --payload only
    (one key for every line of a --file would enqueue the first line alone)."""
    if "--unique-for" in args and "--unique-key" not in args:
        return False
    return not ("--unique-key" in args and "--file" in args)


@st.composite
def action_options(draw: st.DrawFn, command: str) -> tuple[list[str], bool | None]:
    """`cancel` or `retry`: ids, filters, or both, with --reason, --by, --dry-run, --json."""
    # At most one id: with several, some may be done and others refused, an outcome of
    # several error lines and a changed database that this property does not describe
    # (tests/cli/test_one_name_per_thing.py covers it).
    ids = draw(st.lists(values(ACTION_IDS), max_size=1))
    args, valid = draw(options(ACTION_FILTERS))
    valid = combine(valid, *(ok for _, ok in ids))
    statuses = [args[i + 1] for i, name in enumerate(args) if name == "--status"]
    if any(status not in MOVABLE[command] for status in statuses):
        valid = False  # unknown, or a status this action can never move
    if not ids and not set(args) & {"--status", "--task", "--queue", "--since", "--until"}:
        valid = False  # neither ids nor a filter: never "every job"
    if "--since" in args and "--until" in args:
        valid = combine(valid, None)  # the window may be empty or reversed
    extra = draw(st.lists(st.sampled_from(["--dry-run", "--json"]), unique=True))
    return [*(text for text, _ in ids), *args, *extra], valid


@st.composite
def result_options(draw: st.DrawFn, flags: list[str]) -> tuple[list[str], bool | None]:
    """`result`'s id and --wait (short: a pending job waits it out)."""
    text, valid = draw(values(RESULT_IDS))
    args, waited = draw(options({"--wait": [*good("0s", "10ms"), *BAD_DURATIONS]}))
    return [text, *flags, *args], combine(valid, waited)


@st.composite
def cron_options(
    draw: st.DrawFn, command: str, flags: list[str]
) -> tuple[str, list[str], bool | None]:
    """`cron add`, `list`, `pause`, `resume`, `remove`: ("cron", its arguments, valid)."""
    if command == "cron list":
        return "cron", ["list", *flags], True
    name, name_ok = draw(values(SCHEDULE_NAMES))
    if command != "cron add":
        # The seeded database holds no schedule: every name is unknown there.
        return "cron", [command.split()[1], name], False
    args, valid = draw(options(CRON_ADD))
    for option, pool in (("--schedule", EXPRESSIONS), ("--payload", PAYLOADS)):
        if draw(st.integers(0, 9)):  # now and then left out (both are required)
            text, ok = draw(values(pool))
            args += [option, text]
            valid = combine(valid, ok)
        else:
            valid = False
    return "cron", ["add", name, *flags, *args], combine(valid, name_ok)


@st.composite
def subcommand(
    draw: st.DrawFn, command: str, flags: list[str]
) -> tuple[str, list[str], bool | None]:
    """A group's command: `audit verify` (with `flags`), or `queue pause|resume|limit
    NAME` with some of its options (`limit` needs a limit)."""
    group, action = command.split()
    if group == "audit":
        return group, [action, *flags], True
    name, valid = draw(values(QUEUES))
    spec = {"--by": OPERATORS, "--reason": FILTERS}
    if action == "limit":
        spec |= {"--concurrency": CONCURRENCIES, "--rate": RATES}
    args, ok = draw(options(spec))
    if action == "limit" and "--concurrency" not in args and "--rate" not in args:
        ok = False
    return group, [action, name, *args], combine(valid, ok)


@st.composite
def worker_case(draw: st.DrawFn) -> Case:
    """`worker` runs until stopped: only arguments refused before it starts, or --help."""
    name, pool = draw(
        st.sampled_from(
            [
                ("--concurrency", [*BAD_NUMBERS, *bad("1025")]),
                ("-c", BAD_NUMBERS),
                ("--prefetch", [*BAD_NUMBERS, *bad("10001")]),
                ("--metrics-port", [*BAD_NUMBERS, *bad("65536")]),
                ("--log-format", bad("", "xml", NOT_UTF8)),
                ("--lease", BAD_DURATIONS),
                ("--grace", BAD_DURATIONS),
                ("--poll", BAD_DURATIONS),
                ("--help", []),
            ]
        )
    )
    if name == "--help":
        return Case(("worker", "--help"), draw(st.sampled_from(DB_KINDS)), True)
    text, valid = draw(values(pool))
    return Case(("worker", name, text), "seeded", valid)


@st.composite
def dashboard_case(draw: st.DrawFn) -> Case:
    """`dashboard` serves until stopped: only arguments refused before it listens (a
    bad port or token file; an address other than loopback without credentials, which
    `check` never passes), or --help."""
    name, pool = draw(
        st.sampled_from(
            [
                ("--port", [*BAD_NUMBERS, *bad("65536")]),
                ("--host", bad(ALL_INTERFACES, "192.0.2.1", "example.com", "::", "", NOT_UTF8)),
                ("--token-file", bad("", "/nonexistent/tokens", NOT_UTF8, HUGE)),
                ("--help", []),
            ]
        )
    )
    if name == "--help":
        return Case(("dashboard", "--help"), draw(st.sampled_from(DB_KINDS)), True)
    text, valid = draw(values(pool))
    return Case(("dashboard", name, text), "seeded", valid)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    command = draw(st.sampled_from(GENERATED))
    flags = draw(st.lists(st.sampled_from(["--json"]), max_size=1))
    if command == "worker":
        return draw(worker_case())
    if command == "dashboard":
        return draw(dashboard_case())
    kind = draw(st.sampled_from(["seeded"] * 4 + DB_KINDS))
    if command == "top":
        text, valid = draw(values(BAD_INTERVALS))
        return Case(("top", *flags, "--interval", text), kind, valid)
    args: list[str]
    valid: bool | None
    if command == "enqueue":
        args, valid = draw(
            options(
                {
                    "--delay": DELAYS,
                    # --at takes a point in time only: an age like "1h" is refused.
                    "--at": [*good("2030-01-01T00:00:00Z", "2020-01-01"), *bad("1h"), *TIMES[3:8]],
                    "--priority": PRIORITIES_,
                    "--max-retries": MAX_RETRIES,
                    "--queue": QUEUES,
                    "--app": APPS,
                    "--unique-key": UNIQUE_KEYS,
                    "--unique-for": UNIQUE_FOR,
                }
            )
        )
        if "--delay" in args and "--at" in args:
            valid = False
        source = draw(st.sampled_from(["--payload", "--file", "both", "neither"]))
        for name, pool in (("--payload", PAYLOADS), ("--file", FILES_ARG)):
            if source in (name, "both"):
                text, ok = draw(values(pool))
                args += [name, text]
                valid = combine(valid, ok)
        if source in ("both", "neither") or not unique_options_fit(args):
            valid = False
        flags = [*flags, *args]
    elif command in ("show", "history", "batch"):
        text, valid = draw(values(BATCHES if command == "batch" else KNOWN_IDS))
        flags = [text, *flags]
    elif command in ("cancel", "retry"):
        flags, valid = draw(action_options(command))
    elif command == "result":
        flags, valid = draw(result_options(flags))
    elif command == "jobs":
        args, valid = draw(
            options(
                {"--status": STATUSES, "--task": FILTERS, "--queue": FILTERS, "--limit": LIMITS}
            )
        )
        flags = [*flags, *args]
    elif command == "events":
        args, valid = draw(
            options(
                {
                    "--job": [*good("1", "999"), *BAD_NUMBERS, *bad("0")],
                    "--type": TYPES,
                    "--task": FILTERS,
                    "--since": TIMES,
                    "--until": TIMES,
                    "--limit": LIMITS,
                }
            )
        )
        flags = [*flags, *args]
    elif command == "stats":
        args, valid = draw(options({"--interval": INTERVALS}))
        flags = [*flags, *args]
    elif command == "replay":
        flags, valid = draw(st.lists(st.just("--verify"), max_size=1)), True
    elif command == "migrate":
        flags, valid = draw(migrate_options(flags))
    elif command.startswith("cron "):
        command, flags, valid = draw(cron_options(command, flags))
    elif " " in command:  # audit verify, queue pause|resume|limit
        command, flags, valid = draw(subcommand(command, flags))
    else:  # metrics, queues
        flags, valid = (flags if command == "queues" else []), True
    case = Case((command, *flags), kind, None)
    return attrs.evolve(case, valid=combine(valid, db_valid(case.command, kind)))


# -- running one case --------------------------------------------------------------------
def as_bytes(text: str) -> bytes:
    return os.fsencode(text)


def db_argument(kind: str, where: Path) -> str | None:
    return {
        "seeded": str(where / SEEDED),
        "directory": str(where / "data"),
        "text": str(where / "notes.txt"),
        "missing": str(where / "new.db"),
        "empty": "",
        "notutf8": str(where / f"{NOT_UTF8}.db"),
        "huge": str(where / HUGE),
        "none": None,
    }[kind]


def listing(where: Path) -> dict[str, str]:
    """Every file below `where` and a digest of its bytes, except the seeded database
    (compared by its rows) and the -wal/-shm files a read of it may leave beside it."""
    found = {}
    for path in sorted(where.rglob("*")):
        name = str(path.relative_to(where))
        if name.startswith(SEEDED):
            continue
        found[name] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def fresh_dir(template: Path) -> Path:
    where = Path(tempfile.mkdtemp(prefix="hostile-", dir=template.parent))
    shutil.copyfile(template, where / SEEDED)
    (where / "data").mkdir()
    (where / "data" / "keep.txt").write_text("untouched\n")
    for name, content in FILES.items():
        (where / name).write_bytes(content)
    return where


SEEDED_TRACEBACK = re.compile(
    r'Traceback \(most recent call last\):(\n|\\n)\s*File \\?"handlers\.py'
)
"""The failure traceback stored in the seeded database, which `show` prints by design."""


def say(text: str) -> None:
    """`hypothesis.note` inside a property (shown with the failing example), else print."""
    try:
        note(text)
    except InvalidArgument:
        print(text)


def check(case: Case, template: Path) -> None:
    """Run `case` against a fresh copy of the seeded database and assert the property."""
    where = fresh_dir(template)
    try:
        db = db_argument(case.db, where)
        argv = [CONDUCTOR, *case.args] + ([] if db is None else ["--db", db])
        shown = [a if len(a) < 200 else f"<{len(a)} chars: {a[:40]!r}...>" for a in argv[1:]]
        say(f"argv: {shown} (db kind {case.db}, valid={case.valid})")
        before_db = db_snapshot(where / SEEDED)
        before_files = listing(where)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
        done = subprocess.run(
            [as_bytes(a) for a in argv],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            cwd=where,
            env=env,
            timeout=300,
            check=False,
        )
        out = done.stdout.decode("utf-8", "backslashreplace")
        err = done.stderr.decode("utf-8", "backslashreplace")
        code = done.returncode
        say(f"exit {code}; stdout {out[:500]!r}; stderr {err[:2000]!r}")
        crashed = "Traceback" in err or "Traceback" in SEEDED_TRACEBACK.sub("", out)
        assert not crashed, f"traceback: {err[-600:]!r}"
        # `result` of a job that has not finished exits 3 (not yet), apart from 1 (never).
        assert code in ((0, 1, 2, 3) if case.command == "result" else (0, 1, 2)), code
        if case.valid is False:
            assert code != 0, "invalid input was accepted"
        if case.valid is True:
            assert code == 0, f"valid input was refused: {err[:600]!r}"
        if code != 0:
            lines = err.splitlines()
            one_line = len(lines) == 1 and err.endswith("\n")
            assert one_line, f"not one line: {err[:600]!r}"
            assert lines[0].startswith("error: "), lines[0][:600]
        wrote = code == 0 and case.command in WRITE_COMMANDS
        if not wrote or case.db != "seeded":
            assert db_snapshot(where / SEEDED) == before_db, "the database changed"
        if not (code == 0 and case.command in CREATING):
            assert listing(where) == before_files, "files appeared or changed"
        if case.command not in CREATING:
            assert not list(where.glob("new.db*")), "a read command created --db"
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded database, built once per module (and per xdist worker)."""
    return every_state_db(tmp_path_factory.mktemp("hostile-template") / "template.db")


def test_every_command_is_generated_or_deliberately_excluded() -> None:
    assert set(commands()) == set(GENERATED) | EXCLUDED


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_hostile_argv_fails_cleanly_and_changes_nothing(case: Case, template: Path) -> None:
    check(case, template)


# -- the regression corpus ---------------------------------------------------------------
def expand(arg: str | dict[str, Any]) -> str:
    """A corpus argument: a string, or {"text": prefix, "repeat": r, "times": n,
    "suffix": s} for the huge ones."""
    if isinstance(arg, str):
        return arg
    return arg.get("text", "") + arg["repeat"] * arg["times"] + arg.get("suffix", "")


def corpus() -> Iterator[Any]:
    for entry in json.loads(CORPUS.read_text()):
        case = Case(tuple(expand(a) for a in entry["args"]), entry["db"], entry["valid"])
        marks = [pytest.mark.xfail(strict=True, reason=entry["xfail"])] if "xfail" in entry else []
        yield pytest.param(case, id=entry["id"], marks=marks)


@pytest.mark.parametrize("case", list(corpus()))
def test_corpus_case_fails_cleanly_and_changes_nothing(case: Case, template: Path) -> None:
    check(case, template)
