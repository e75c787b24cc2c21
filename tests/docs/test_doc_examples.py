"""Every example in README.md and docs/*.md runs, and prints what the doc shows.

One test per doc: a doc's examples share one directory and database, in order, as a
reader would run them; docs run in parallel under xdist. See harness.py for the rules.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.docs.harness import (
    ROOT,
    DocExampleError,
    documents,
    examples,
    matches,
    normalise,
    parse,
    run_doc,
)


@pytest.mark.parametrize("path", documents(), ids=lambda path: path.name)
def test_every_example_in_the_doc_runs_and_prints_what_the_doc_shows(path: Path) -> None:
    run_doc(path)


def test_the_harness_runs_examples_in_readme_tasks_and_operations() -> None:
    # A doc whose examples were all marked not-run by mistake would pass silently.
    counts = {path.name: len(examples(parse(path))) for path in documents()}
    for name in ("README.md", "tasks.md", "operations.md", "observability.md"):
        assert counts[name] >= 3, f"{name} has only {counts[name]} examples that run"


def test_every_block_of_commands_says_it_is_sh_so_the_harness_sees_it() -> None:
    commands = ("conductor ", "just ", "python ", "pip ", "sqlite3 ")
    unmarked = [
        block.where
        for path in documents()
        for block in parse(path)
        if not block.language
        and any(line.lstrip().startswith(commands) for line in block.text.splitlines())
    ]
    assert not unmarked, f"fenced blocks of commands without ```sh: {unmarked}"


def _doc(tmp_path: Path, markdown: str) -> Path:
    path = tmp_path / "drift.md"
    path.write_text(textwrap.dedent(markdown), encoding="utf-8")
    return path


def test_a_wrong_output_in_a_doc_fails_naming_the_file_and_the_line(tmp_path: Path) -> None:
    doc = _doc(
        tmp_path,
        """\
        # Drift

        ```sh
        conductor enqueue --payload '{"task": "noop"}'
        conductor jobs
        ```

        ```text
        1
        ID  Task  Status     Retries  Queue    Priority  Run at  Updated
        1   noop  completed  0/3      default  medium            2026-11-28 00:44:27.576Z
        ```
        """,
    )
    with pytest.raises(DocExampleError) as failure:
        run_doc(doc)
    message = str(failure.value)
    assert message.startswith(f"{doc}:8: the output shown is not what the block at {doc}:3")
    assert "-1 noop completed 0/3" in message
    assert "+1 noop pending 0/3" in message


def test_the_same_doc_with_the_true_output_passes(tmp_path: Path) -> None:
    doc = _doc(
        tmp_path,
        """\
        ```sh
        conductor enqueue --payload '{"task": "noop"}'
        conductor jobs
        ```

        ```text
        1
        ID  Task  Status   Retries  Queue    Priority  Run at                    Updated
        1   noop  pending  0/3      default  medium    2026-11-28 00:44:27.576Z  ...
        ```
        """,
    )
    assert run_doc(doc) == 1


def test_a_failing_command_fails_the_example_with_its_output(tmp_path: Path) -> None:
    doc = _doc(
        tmp_path,
        """\
        Intro.

        ```sh
        conductor show 99
        conductor jobs
        ```
        """,
    )
    with pytest.raises(DocExampleError, match=rf"^{doc}:3: the sh block exited 1, expected 0"):
        run_doc(doc)


def test_examples_in_one_doc_share_the_directory_the_database_and_exports(
    tmp_path: Path,
) -> None:
    doc = _doc(
        tmp_path,
        """\
        ```sh
        mkdir shop && cd shop && export GREETING=hello
        conductor enqueue --payload '{"task": "noop"}'
        ```

        <!-- exit: 3 -->
        ```sh
        conductor enqueue --payload '{"task": "noop"}'
        echo "$GREETING from $(basename "$PWD")"; exit 3
        ```

        ```text
        2
        hello from shop
        ```
        """,
    )
    assert run_doc(doc) == 2


def test_markers_skip_blocks_and_unknown_markers_are_refused(tmp_path: Path) -> None:
    doc = _doc(
        tmp_path,
        """\
        <!-- not run: it would run until Ctrl-C -->
        ```sh
        conductor worker
        ```

        <!-- not run -->
        ```sh
        false
        ```
        """,
    )
    with pytest.raises(DocExampleError, match=rf"^{doc}:6: unknown marker '<!-- not run -->'"):
        parse(doc)


def test_a_python_block_that_does_not_compile_fails_naming_its_line(tmp_path: Path) -> None:
    doc = _doc(
        tmp_path,
        """\
        ```python
        def broken(:
        ```
        """,
    )
    with pytest.raises(DocExampleError, match=rf"^{doc}:1: the python block does not compile"):
        run_doc(doc)


def test_a_python_block_opening_with_a_file_name_is_saved_there_for_later_blocks(
    tmp_path: Path,
) -> None:
    doc = _doc(
        tmp_path,
        """\
        ```python
        # shopapp/tasks.py
        from conductor import task


        @task("pack")
        def pack(box: int) -> None:
            print(f"packed {box}")
        ```

        ```sh
        conductor enqueue --app shopapp.tasks --payload '{"task": "pack", "box": 7}'
        conductor worker --app shopapp.tasks --burst -q
        ```

        ```text
        1
        packed 7
        ```
        """,
    )
    assert run_doc(doc) == 2


def test_lines_in_any_order_match_a_log_of_concurrent_jobs() -> None:
    shown = "... job 2 done\n... job 1 done\n...\n"
    assert matches(shown, "t job 1 done\nt job 2 done\nt stop\n", any_order=True)
    assert not matches(shown, "t job 1 done\nt job 3 done\n", any_order=True)
    assert not matches("job 1 done\njob 2 done", "job 1 done\njob 2 done\nextra", any_order=True)


def test_an_ellipsis_on_its_own_line_stands_for_any_number_of_lines() -> None:
    assert matches("first\n...\nlast", "first\na\nb\nlast")
    assert matches("first\n...\nlast", "first\nlast")
    assert not matches("first\n...\nlast", "first\na\nlast but one")


times = st.datetimes(min_value=dt.datetime(2000, 1, 1)).map(
    lambda t: t.isoformat(timespec="microseconds")
)


@given(
    log_time=st.datetimes(min_value=dt.datetime(2000, 1, 1)).map(
        lambda t: t.strftime("%Y-%m-%d %H:%M:%S,") + "123"
    ),
    stamp=times,
    pid=st.integers(1, 4_000_000),
    millis=st.floats(0, 1e6, allow_nan=False).map(lambda f: f"{f:.1f}"),
    spaces=st.integers(1, 20),
)
def test_times_pids_durations_and_column_widths_never_make_a_difference(
    log_time: str, stamp: str, pid: int, millis: str, spaces: int
) -> None:
    actual = (
        f"{log_time} job 1 x completed duration_ms={millis} at {stamp}Z "
        f"by web-1:{pid}:9{' ' * spaces}ok"
    )
    shown = (
        "2026-11-28 01:19:30,087 job 1 x completed duration_ms=50.2 "
        "at 2026-11-28T01:13:47.487205Z by h:1:2 ok"
    )
    assert normalise(actual) == normalise(shown)


@given(word=st.text(alphabet="abcdefghij", min_size=1, max_size=8))
def test_normalising_keeps_words_and_ids_that_tell_outputs_apart(word: str) -> None:
    assert normalise(f"job 1 {word} pending") != normalise(f"job 2 {word} pending")
    assert normalise(f"job 1 {word} pending") != normalise(f"job 1 {word}x pending")


def test_the_complete_example_in_tasks_md_is_the_file_it_copies() -> None:
    shown = [
        block.text
        for block in parse(ROOT / "docs" / "tasks.md")
        if block.language == "python" and block.text.startswith("import time")
    ]
    source = (ROOT / "docs" / "examples" / "shop_tasks.py").read_text(encoding="utf-8")
    assert len(shown) == 1
    assert shown[0].strip() in source, (
        "docs/tasks.md's complete example differs from docs/examples/shop_tasks.py"
    )
