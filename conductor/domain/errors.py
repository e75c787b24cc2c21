"""One small exception tree.

Every error a user can cause or meet derives from `ConductorError`; the CLI turns it into
one line on stderr and exit code 1. Messages name what was wrong and what is expected, so
callers never need to add context. Storage errors (sqlite3, later psycopg) are translated
into these at the ledger boundary, `raise ... from e`, so nothing above it sees a driver
exception.
"""

from __future__ import annotations


class ConductorError(Exception):
    """Base of every error conductor raises on purpose."""


class InvalidInput(ConductorError):
    """A value given by a user or caller is malformed (payload, duration, priority, ...)."""


class UnknownJob(ConductorError):
    """No job has the given id."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job with id {job_id}; expected an id shown by `conductor jobs`")
        self.job_id = job_id


class InvalidTransition(ConductorError):
    """An event would move a job along an edge the state table does not have."""

    def __init__(
        self,
        job_id: int,
        state: str | None,
        event_type: str,
        allowed_from: tuple[str, ...] = (),
        *,
        expected: str | None = None,
        refusal: str | None = None,
    ) -> None:
        where = "does not exist" if state is None else f"is {state}"
        if refusal is not None:
            # An operator's request, refused in the words of what was asked for.
            super().__init__(f"job {job_id} {where}; {refusal}")
        else:
            if expected is None and allowed_from:
                expected = f"a job that is {' or '.join(allowed_from)}"
            hint = f" (expected {expected})" if expected else ""
            super().__init__(f"job {job_id} {where}; cannot apply {event_type!r}{hint}")
        self.job_id = job_id
        self.state = state
        self.event_type = event_type


class NotSelected(ConductorError):
    """A job an operator's filtered action would have acted on no longer matches the
    filters (it changed since it was selected), or a job named by id never did."""

    def __init__(self, job_id: int, why: str) -> None:
        super().__init__(f"job {job_id} {why}")
        self.job_id = job_id


class LedgerError(ConductorError):
    """The ledger could not be opened, read or written."""


class UnreadableEvent(LedgerError):
    """A stored event has a type or version this conductor does not know (a newer one
    wrote it)."""


class DatabaseNotFound(LedgerError):
    """A read command was pointed at a database that does not exist (reads never create)."""


class NotAConductorDatabase(LedgerError):
    """The file exists but is not SQLite, or is SQLite holding something else."""


class SchemaTooNew(LedgerError):
    """The database was written by a newer conductor whose schema this one cannot read."""


class DatabaseBusy(LedgerError):
    """Another writer held the database lock past the busy timeout."""


class ReadOnlyDatabase(LedgerError):
    """A write was attempted on a database opened, mounted or stored read-only."""


class DiskFull(LedgerError):
    """The filesystem holding the database has no room for the write."""


class CorruptDatabase(LedgerError):
    """SQLite reports the file as malformed."""


class DatabaseUnavailable(LedgerError):
    """The database server cannot be reached, or closed the connection (restart, failover,
    network partition). Transient: a worker retries, reconnecting, until it answers."""


class ResultNotJSON(ConductorError):
    """A handler returned a value JSON cannot hold: the attempt fails, not retried (the
    same code returns the same kind of value again)."""


class ResultTooLarge(ConductorError):
    """A handler's return value is over the result cap (`Settings.max_result_bytes`): the
    attempt fails, not retried."""


class JobFailedError(ConductorError):
    """`Conductor.result` of a job that failed: it carries the job's last error."""

    def __init__(
        self,
        job_id: int,
        reason: str,
        *,
        error_type: str | None = None,
        message: str = "",
        traceback: str = "",
    ) -> None:
        super().__init__(f"job {job_id} failed: {reason}")
        self.job_id = job_id
        self.reason = reason
        self.error_type = error_type
        """The last attempt's exception type name; None when no attempt raised (a lost
        lease with no retries left)."""
        self.message = message
        self.traceback = traceback


class JobCancelledError(ConductorError):
    """`Conductor.result` of a job that was cancelled: it has no result."""

    def __init__(self, job_id: int, by: str = "", reason: str = "") -> None:
        why = f" by {by}" if by else ""
        # `cancelled` is the reason recorded when none was given: it says nothing more.
        said = f": {reason}" if reason and reason != "cancelled" else ""
        super().__init__(f"job {job_id} was cancelled{why}{said}")
        self.job_id = job_id
        self.by = by
        self.reason = reason


class ResultTimeout(ConductorError, TimeoutError):
    """`Conductor.result` waited its timeout and the job has not finished (it may still)."""

    def __init__(self, job_id: int, status: str, waited: float) -> None:
        after = f" after waiting {waited:g}s" if waited else ""
        super().__init__(f"job {job_id} is {status}{after}; no result yet")
        self.job_id = job_id
        self.status = status


class ControlRefused(ConductorError):
    """The ledger refused an operations-stream event (about a queue or a schedule): the
    fold of its subject's controls row found it illegal, and the whole append stored
    nothing."""


class ControlUnchanged(ControlRefused):
    """An operator asked for what already holds (pause a paused queue, set a limit to its
    current value): refused so the log records changes only, and reported as no change."""


class UnknownSchedule(ControlRefused):
    """No schedule has the given name (or it was removed)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"no schedule named {name!r}; expected a name shown by `conductor cron list`"
        )
        self.name = name


class ConfigurationError(ConductorError):
    """A setting of conductor inside someone else's process (an embedded worker, an ASGI
    lifespan) is unknown, malformed or names a database that cannot be used: raised when
    the application starts, its message naming the setting and what is expected."""
