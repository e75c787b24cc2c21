# conductor's developer recipes. `just` alone runs lint and the whole test suite.

default: lint test

# The whole test suite; extra arguments go to pytest (e.g. `just test -k ledger`).
test *args:
    python -m pytest -n 2 {{args}}

# The whole suite three times in a row while two CPU hogs load both cores (RUNS=n for more):
# the proof that no test depends on the machine's speed. Extra arguments go to pytest.
test-under-load *args:
    tests/load/run_under_load.sh {{args}}

# ruff (lint and format) and mypy (strict on conductor/ and projections/).
lint:
    python -m ruff check .
    python -m ruff format --check .
    python -m mypy

# Enqueue the demo jobs into ./conductor.db and show them.
demo:
    conductor demo

# Regenerate docs/cli.md from the click commands (tests fail when it drifts).
docs:
    python -m conductor.cli.docs > docs/cli.md

# conductor beside huey, RQ and Celery on identical workloads, interleaved, medians of 3 runs;
# RQ and Celery need Redis at 127.0.0.1:6379; plots and peers.json go to docs/img (`--out`).
# Quicker: `just bench --runs 1 --quick`. The engine alone: `conductor bench`.
bench *args:
    python -m pip install -q -e '.[bench]'
    python tests/benchmarks/peers.py {{args}}

# conductor beside procrastinate and pgqueuer on the PostgreSQL server at 127.0.0.1:5432 (a fresh
# database per measurement, made and dropped through --admin-url): drain of 20,000 jobs with 1, 2
# and 4 worker processes, and pickup latency; medians of 3 interleaved runs; plots and
# pg_peers.json go to docs/img (`--out`). Quicker: `just bench-pg --runs 1 --quick`.
bench-pg *args:
    python -m pip install -q -e '.[bench]'
    python tests/benchmarks/pg_peers.py {{args}}

# Ledger benchmarks: enqueue rates, replay of 1,000,000 events, stats/jobs at 1,000,000 jobs.
bench-ledger *args:
    python tests/benchmarks/ledger_bench.py {{args}}

# The dashboard at 1,000,000 jobs (server time of the overview and jobs pages) and what ten SSE
# clients cost a draining worker.
bench-dashboard *args:
    python tests/benchmarks/dashboard_bench.py {{args}}

# `conductor enqueue` and `conductor jobs` as commands, next to `python -c pass` (target <= 100 ms
# median). Compiles the bytecode first, as an install does (editable installs may not).
bench-cli *args:
    python -m compileall -q conductor projections
    python tests/benchmarks/cli_bench.py {{args}}

# The long chaos soak (20,000 jobs, 100 worker kills); skipped in `just test`.
soak:
    CONDUCTOR_SOAK=1 python -m pytest -n 2 tests/reliability -m soak
