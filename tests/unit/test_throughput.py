"""The activity figures of `conductor stats` (projections/throughput.py), and the trace
ids of the history view (projections/history.py): pure functions over events."""

from __future__ import annotations

import datetime as dt

import pytest

from conductor.domain.clock import stamp
from conductor.domain.events import (
    Event,
    JobAttemptFailed,
    JobCancelled,
    JobClaimed,
    JobCompleted,
    JobEnqueued,
    JobFailed,
    JobLeaseExtended,
    JobRescued,
    JobResultIgnored,
    JobRetryScheduled,
    JobRunStarted,
    JobStarted,
    RecordedEvent,
)
from projections import throughput
from projections.history import trace_id

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def ago(seconds: float) -> str:
    return stamp(NOW - dt.timedelta(seconds=seconds))


class Log:
    """Events numbered as a ledger would number them."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    def add(self, job_id: int, at: str, event: Event) -> RecordedEvent:
        rec = RecordedEvent(
            seq=len(self.events) + 1, job_id=job_id, at=at, event=event, trace=None, hash=""
        )
        self.events.append(rec)
        return rec

    def enqueued(self, job_id: int, at: str, run_at: str | None = None) -> RecordedEvent:
        event = JobEnqueued(
            task="t", queue="q", priority=1, max_retries=3, run_at=run_at or at, payload="{}"
        )
        return self.add(job_id, at, event)

    def started(self, job_id: int, at: str, attempt: int = 1) -> RecordedEvent:
        return self.add(job_id, at, JobStarted(attempt=attempt, worker="w", lease_expires_at=at))

    def completed(self, job_id: int, at: str, attempt: int = 1) -> RecordedEvent:
        return self.add(job_id, at, JobCompleted(attempt=attempt))

    def attempt_failed(self, job_id: int, at: str, attempt: int = 1) -> RecordedEvent:
        failed = JobAttemptFailed(attempt=attempt, error_type="E", message="m", traceback="")
        return self.add(job_id, at, failed)

    def since(self, seconds: float) -> list[RecordedEvent]:
        """What `Ledger.recent` returns for a window of `seconds` ending at NOW."""
        return [rec for rec in self.events if rec.at >= ago(seconds)]


def window(activity: throughput.Activity, name: str) -> throughput.Window:
    return next(w for w in activity.windows if w.name == name)


def test_percentiles_are_nearest_rank_and_always_one_of_the_samples() -> None:
    values = [float(n) for n in range(1, 21)]
    assert throughput.percentile(values, 50) == 10.0
    assert throughput.percentile(values, 95) == 19.0
    assert throughput.percentile(values, 100) == 20.0
    assert throughput.percentile([7.0], 50) == 7.0
    assert throughput.percentile([7.0], 95) == 7.0
    assert throughput.percentile([], 50) is None
    assert throughput.spread([3.0, 1.0, 2.0]) == throughput.Spread(count=3, p50=2.0, p95=3.0)


def test_counts_rates_and_percentiles_cover_exactly_each_window() -> None:
    log = Log()
    # Job 1: finished half an hour ago (only in the hour); jobs 2-4 within the minute.
    log.enqueued(1, ago(1800))
    log.started(1, ago(1799))  # waited 1 s
    log.completed(1, ago(1789))  # ran 10 s
    for job, wait, run in ((2, 0.5, 2.0), (3, 1.5, 4.0), (4, 2.5, 6.0)):
        log.enqueued(job, ago(50))
        log.started(job, ago(50 - wait))
        log.completed(job, ago(50 - wait - run))
    log.enqueued(5, ago(40))
    log.started(5, ago(39))
    log.attempt_failed(5, ago(38))
    log.add(5, ago(38), JobFailed(attempt=1, reason="gave up"))

    activity = throughput.summarise(log.since(3600), now=NOW)
    minute, hour = window(activity, "last_minute"), window(activity, "last_hour")
    assert activity.at == stamp(NOW)
    assert (minute.completed, minute.failed, minute.attempts_failed) == (3, 1, 1)
    assert (hour.completed, hour.failed, hour.attempts_failed) == (4, 1, 1)
    assert minute.completed_per_second == 3 / 60
    assert hour.failed_per_second == 1 / 3600
    # Waits in the minute: 0.5, 1.5, 2.5 and job 5's 1.0; the hour adds job 1's 1.0.
    assert minute.wait == throughput.Spread(count=4, p50=1.0, p95=2.5)
    assert hour.wait == throughput.Spread(count=5, p50=1.0, p95=2.5)
    # Runs: 2, 4, 6 and job 5's failed attempt of 1 s; the hour adds job 1's 10 s.
    assert minute.run == throughput.Spread(count=4, p50=2.0, p95=6.0)
    assert hour.run == throughput.Spread(count=5, p50=4.0, p95=10.0)


def test_wait_counts_from_when_the_job_became_due() -> None:
    log = Log()
    log.enqueued(1, ago(50), run_at=ago(20))  # scheduled: due 30 s after enqueue
    log.started(1, ago(18))
    log.attempt_failed(1, ago(17))
    log.add(1, ago(17), JobRetryScheduled(attempt=1, run_at=ago(10)))
    log.started(1, ago(7), attempt=2)
    log.add(1, ago(6), JobRescued(attempt=2, reason="lease expired"))
    log.started(1, ago(2), attempt=3)

    minute = window(throughput.summarise(log.since(3600), now=NOW), "last_minute")
    # 2 s after run_at, 3 s after the retry's run_at, 4 s after the rescue.
    assert minute.wait == throughput.Spread(count=3, p50=3.0, p95=4.0)
    # Only the first attempt reached an outcome; the rescued one has no run time.
    assert minute.run == throughput.Spread(count=1, p50=1.0, p95=1.0)


def test_a_sample_opened_before_the_window_needs_its_lead_in_event() -> None:
    log = Log()
    log.enqueued(1, ago(7200))  # due two hours ago
    log.enqueued(2, ago(4000))
    log.started(2, ago(3700))  # running since before the hour
    log.add(2, ago(100), JobLeaseExtended(attempt=1, lease_expires_at=ago(0)))
    started = log.started(1, ago(30))
    completed = log.completed(2, ago(20))
    log.enqueued(3, ago(10))
    log.started(3, ago(9))  # opened in the window: needs nothing

    recent = log.since(3600)
    missing = throughput.unpaired(recent)
    assert missing == {1: started.seq, 2: completed.seq}

    without = window(throughput.summarise(recent, now=NOW), "last_hour")
    assert (without.wait.count, without.run.count) == (1, 0)
    lead_in = [log.events[0], log.events[2]]  # what Ledger.preceding finds for them
    assert all(rec.type in throughput.LEAD_IN_TYPES for rec in lead_in)
    hour = window(throughput.summarise(recent, now=NOW, lead_in=lead_in), "last_hour")
    assert hour.wait == throughput.Spread(count=2, p50=1.0, p95=7170.0)
    assert hour.run == throughput.Spread(count=1, p50=3680.0, p95=3680.0)
    assert hour.completed == 1  # the lead-in events are context, never counted


def test_outcomes_of_other_attempts_and_cut_short_attempts_have_no_run_time() -> None:
    log = Log()
    log.enqueued(1, ago(50))
    log.started(1, ago(49))
    log.add(
        1, ago(45), JobCancelled(by="operator", reason="cancelled", batch="20261207-100000-abcdef")
    )
    log.add(1, ago(40), JobResultIgnored(attempt=1, outcome="completed", reason="cancelled"))
    log.enqueued(2, ago(30))
    log.started(2, ago(29), attempt=2)
    log.completed(2, ago(28), attempt=3)  # not the attempt that started

    minute = window(throughput.summarise(log.since(60), now=NOW), "last_minute")
    assert minute.run.count == 0
    assert minute.completed == 1


def test_a_start_stamped_before_its_due_time_waits_zero_not_a_negative_time() -> None:
    log = Log()
    log.enqueued(1, ago(10), run_at=ago(5))
    log.started(1, ago(6))  # another host's clock runs a second behind
    minute = window(throughput.summarise(log.since(60), now=NOW), "last_minute")
    assert minute.wait == throughput.Spread(count=1, p50=0.0, p95=0.0)


def test_a_quiet_window_has_zero_counts_and_no_percentiles() -> None:
    activity = throughput.summarise([], now=NOW)
    assert [w.name for w in activity.windows] == ["last_minute", "last_hour"]
    minute = activity.windows[0]
    assert minute.as_dict() == {
        "seconds": 60,
        "sampled": False,
        "since_first_event": False,
        "completed": 0,
        "failed": 0,
        "attempts_failed": 0,
        "completed_per_second": 0.0,
        "failed_per_second": 0.0,
        "wait_seconds": {"count": 0, "p50": None, "p95": None},
        "run_seconds": {"count": 0, "p50": None, "p95": None},
    }


def test_a_window_reaching_past_what_was_read_covers_only_the_time_since() -> None:
    log = Log()
    for job_id, seconds_ago in ((1, 1800), (2, 100), (3, 30)):
        log.enqueued(job_id, ago(seconds_ago + 1))
        log.started(job_id, ago(seconds_ago + 0.5))
        log.completed(job_id, ago(seconds_ago))
    tally = throughput.Tally()
    tally.add(log.events)
    # Only events since 200 s ago were read: the hour is reported over those 200 s.
    activity = tally.figures(NOW, covered_since=ago(200))
    minute, hour = window(activity, "last_minute"), window(activity, "last_hour")
    assert (minute.sampled, minute.seconds, minute.completed) == (False, 60, 1)
    assert (hour.sampled, hour.seconds, hour.completed) == (True, 200, 2)
    assert hour.completed_per_second == 2 / 200
    assert hour.as_dict()["sampled"] is True


def test_a_window_reaching_back_before_the_first_event_covers_only_the_time_since() -> None:
    log = Log()
    log.enqueued(1, ago(90))
    log.started(1, ago(89))
    log.completed(1, ago(88))
    tally = throughput.Tally()
    tally.add(log.events)
    # The log began 90 s ago: the minute is whole, the hour has had 90 s so far.
    activity = tally.figures(NOW, begun=ago(90))
    minute, hour = window(activity, "last_minute"), window(activity, "last_hour")
    assert (minute.since_first_event, minute.seconds) == (False, 60)
    assert (hour.since_first_event, hour.seconds, hour.completed) == (True, 90, 1)
    assert hour.completed_per_second == 1 / 90


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("traceparent", "expected"),
    [
        (f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),
        (f"00-{TRACE}-00f067aa0ba902b7-00", TRACE),
        (f"01-{TRACE}-00f067aa0ba902b7-01-future", TRACE),
        (None, None),
        ("", None),
        ("not a traceparent", None),
        (f"00-{TRACE}-00f067aa0ba902b7-01-extra", None),
        (f"ff-{TRACE}-00f067aa0ba902b7-01", None),
        (f"00-{'0' * 32}-00f067aa0ba902b7-01", None),
        (f"00-{TRACE.upper()}-00f067aa0ba902b7-01", None),
    ],
)
def test_the_trace_id_is_read_from_a_w3c_traceparent(
    traceparent: str | None, expected: str | None
) -> None:
    assert trace_id(traceparent) == expected


def test_a_prefetched_job_waits_until_its_handler_starts_and_runs_only_from_then() -> None:
    log = Log()
    log.enqueued(1, ago(50))
    log.add(1, ago(49), JobClaimed(attempt=1, worker="w", lease_expires_at=ago(0)))
    log.add(1, ago(46), JobRunStarted(attempt=1))  # 3 s in the worker's prefetch buffer
    log.completed(1, ago(44))
    minute = window(throughput.summarise(log.since(60), now=NOW), "last_minute")
    assert minute.wait == throughput.Spread(count=1, p50=4.0, p95=4.0)
    assert minute.run == throughput.Spread(count=1, p50=2.0, p95=2.0)


def test_buckets_put_each_outcome_and_sample_in_the_slice_it_closed_in() -> None:
    log = Log()
    log.enqueued(1, ago(290))
    log.started(1, ago(280))  # waited 10 s, in the slice from 300 s to 200 s ago
    log.completed(1, ago(250))  # ran 30 s
    log.enqueued(2, ago(150))
    log.started(2, ago(148))
    log.attempt_failed(2, ago(120))
    log.add(2, ago(120), JobFailed(attempt=1, reason="gave up"))
    log.enqueued(3, ago(30))
    log.started(3, ago(25))
    log.completed(3, ago(0))  # at NOW exactly: the last slice includes its end
    tally = throughput.Tally()
    tally.add(log.events)
    buckets = tally.buckets(NOW, 100, 3)
    assert [b.start for b in buckets] == [ago(300), ago(200), ago(100)]
    assert [b.completed for b in buckets] == [1, 0, 1]
    assert [(b.failed, b.attempts_failed) for b in buckets] == [(0, 0), (1, 1), (0, 0)]
    assert [b.wait.p50 for b in buckets] == [10.0, 2.0, 5.0]
    assert [b.run.p50 for b in buckets] == [30.0, 28.0, 25.0]  # a failed attempt ran too
    assert (
        sum(b.completed for b in buckets)
        == window(tally.figures(NOW, (("five_minutes", 300),)), "five_minutes").completed
    )
