"""Run the examples in the Markdown docs and compare what they print with what the docs say.

The model is sqlite-utils' docs checked against its commands, and doctest: a reader who
types a doc's commands in order, in an empty directory, must see what the doc shows.

What a doc says, and how the harness reads it:

- A ```sh block runs in bash (`set -e`: the first failing command fails the example),
  with stdout and stderr merged, as a terminal shows them. All the blocks of one doc run
  in order in one temporary working directory - as a reader would run them, so job ids
  and the `./conductor.db` carry over - and the directory and exported variables a block
  leaves (`cd`, `export`) carry over to the next block. The directory holds a `docs`
  link to the checkout's docs/, so `cp docs/examples/...` works as from a checkout.
- The first ```text block after a ```sh block, before any other fenced block, is that
  block's expected output. Without one, the block only has to succeed.
- A ```python block must compile. It then runs in a fresh interpreter in the same
  directory; if its first line is a comment naming a file (`# myapp/tasks.py`), the
  block is saved there first, as the reader is told to do.
- Markers, HTML comments on the line(s) right before a fence, make each exception
  visible in the Markdown:
  `<!-- not run: why -->` skips a block (a worker that runs until Ctrl-C, `pip install`);
  `<!-- exit: N -->` expects a sh block to exit with N (an example of an error);
  `<!-- output: any order -->` on a text block compares its lines in any order (the log
  of concurrent jobs); `<!-- output: not checked: why -->` shows a text block that is not
  the output of the block before it.

Comparison: both sides are normalised - times, durations, worker ids, pids and hashes
become placeholders, runs of spaces become one (table columns widen with their values),
trailing blank lines go - and then, as with doctest's ELLIPSIS, `...` in the doc matches
any text within a line, and a line of just `...` any number of lines (in an `any order`
block: lines the doc leaves out).
"""

from __future__ import annotations

import difflib
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]

RUN_LANGUAGES = ("sh", "python")
TIMEOUT = 120.0
"""Seconds one block may take: generous, for a loaded 2-core machine."""

_MARKER = re.compile(r"^<!--\s*(?P<key>[a-z ]+):\s*(?P<value>.*?)\s*-->$")
_KNOWN_MARKERS = ("not run", "exit", "output")


class DocExampleError(AssertionError):
    """A doc's example did not do what the doc says; the message names file and line."""


@attrs.frozen
class Block:
    """One fenced block: where it is, its language, its text and its markers."""

    path: Path
    line: int
    """The line of the opening fence, counting from 1."""
    language: str
    text: str
    markers: dict[str, str]

    @property
    def where(self) -> str:
        try:
            name = self.path.relative_to(ROOT)
        except ValueError:
            name = self.path
        return f"{name}:{self.line}"


@attrs.frozen
class Example:
    """A block to run, with the output the doc expects of it (or None)."""

    block: Block
    expected: Block | None


def parse(path: Path, markdown: str | None = None) -> list[Block]:
    """Every fenced block of a Markdown file, with the markers just before it."""
    lines = (path.read_text(encoding="utf-8") if markdown is None else markdown).splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = lines[index].strip()
        if not fence.startswith("```"):
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith("```"):
            end += 1
        if end == len(lines):
            raise DocExampleError(f"{path}:{index + 1}: a fenced block is never closed")
        blocks.append(
            Block(
                path=path,
                line=index + 1,
                language=fence[3:].strip(),
                text="\n".join(lines[index + 1 : end]),
                markers=_markers_before(path, lines, index),
            )
        )
        index = end + 1
    return blocks


def _markers_before(path: Path, lines: list[str], fence: int) -> dict[str, str]:
    markers: dict[str, str] = {}
    index = fence - 1
    while index >= 0 and lines[index].strip().startswith("<!--"):
        comment = lines[index].strip()
        found = _MARKER.match(comment)
        if found is None or found["key"] not in _KNOWN_MARKERS:
            raise DocExampleError(
                f"{path}:{index + 1}: unknown marker {comment!r}; expected one of "
                + ", ".join(f"<!-- {key}: ... -->" for key in _KNOWN_MARKERS)
            )
        markers[found["key"]] = found["value"]
        index -= 1
    return markers


def examples(blocks: list[Block]) -> list[Example]:
    """The blocks to run, in order, each paired with the text block that shows its output."""
    found: list[Example] = []
    for position, block in enumerate(blocks):
        if block.language not in RUN_LANGUAGES or "not run" in block.markers:
            continue
        expected = None
        if block.language == "sh" and position + 1 < len(blocks):
            following = blocks[position + 1]
            if following.language == "text" and not following.markers.get("output", "").startswith(
                "not checked"
            ):
                expected = following
        found.append(Example(block=block, expected=expected))
    return found


# -- normalisation -----------------------------------------------------------------------

_VARIABLE = [
    # 2026-11-28 01:19:30,087 / 2026-11-28T01:13:47.487205Z / 2026-11-28 00:44:27.576Z
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\b\d\d:\d\d:\d\d[.,]\d+"), "<time>"),  # a log line's time of day
    (re.compile(r"\b[0-9a-f]{64}\b"), "<hash>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<trace>"),
    # a worker id: host:pid:start
    (re.compile(r"\b[\w.-]+:\d+:[\w.-]+\b"), "<worker>"),
    (re.compile(r"(duration_ms=|pid[= ]|pids )\d[\d.]*"), r"\1<n>"),
    # a duration as the CLI renders it: +50.2ms, 1.25s, 2.5m, 1.2h
    (re.compile(r"[+-]?\b\d+(?:\.\d+)?(?:ms|us|s|m|h)\b"), "<duration>"),
]


def normalise(text: str) -> str:
    """What legitimately varies from run to run replaced by placeholders; spaces squeezed."""
    lines = []
    for raw in text.splitlines():
        line = raw
        for pattern, placeholder in _VARIABLE:
            line = pattern.sub(placeholder, line)
        lines.append(re.sub(r"[ \t]+", " ", line).strip())
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _line_pattern(expected: str) -> str:
    return ".*?".join(re.escape(part) for part in expected.split("..."))


def _block_pattern(expected: str) -> re.Pattern[str]:
    # A `...` line stands for any number of lines, none included; elsewhere `...` stands
    # for any text within the line.
    pattern = "".join(
        r"(?:.*\n)*?" if line == "..." else _line_pattern(line) + r"\n"
        for line in expected.splitlines()
    )
    return re.compile(pattern)


def matches(expected: str, actual: str, *, any_order: bool = False) -> bool:
    """Whether the output a command printed is what the doc shows, both normalised."""
    want, got = normalise(expected), normalise(actual)
    if not any_order:
        return _block_pattern(want).fullmatch(got + "\n") is not None
    patterns = [line for line in want.splitlines() if line]
    extra_allowed = "..." in patterns
    patterns = [line for line in patterns if line != "..."]
    remaining = [line for line in got.splitlines() if line]
    # Most literal text first, so a loose pattern does not take a line a strict one needs.
    for line in sorted(patterns, key=lambda p: -len(p.replace("...", ""))):
        regex = re.compile(_line_pattern(line))
        hit = next((n for n, candidate in enumerate(remaining) if regex.fullmatch(candidate)), None)
        if hit is None:
            return False
        del remaining[hit]
    return extra_allowed or not remaining


# -- running -----------------------------------------------------------------------------


@attrs.frozen
class Ran:
    code: int
    output: str


class Session:
    """One reader at one terminal: a working directory and the variables they exported."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state = directory / ".doc-session"
        self.state.mkdir()
        (directory / "docs").symlink_to(ROOT / "docs")
        self.cwd = directory
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CONDUCTOR_", "OTEL_", "PYTEST_", "COV_"))
        }
        # The `conductor` command and `python` run this checkout's code.
        paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        environment["COLUMNS"] = "200"
        environment["TZ"] = "UTC"
        self.env = environment

    def run(self, block: Block) -> Ran:
        if block.language == "python":
            return self._python(block)
        return self._sh(block)

    def _sh(self, block: Block) -> Ran:
        after = self.state / "after"
        script = (
            "set -e\n"
            f"{block.text}\n"
            f'__status=$?; pwd > "{after}.cwd"; export -p > "{after}.env"; exit $__status\n'
        )
        ran = self._spawn(["bash", "-c", script], block)
        next_cwd = after.with_suffix(".cwd")
        if next_cwd.exists():
            self.cwd = Path(next_cwd.read_text().strip())
            self.env = _exported(after.with_suffix(".env"), self.env)
        return ran

    def _python(self, block: Block) -> Ran:
        try:
            compile(block.text, block.where, "exec")
        except SyntaxError as e:
            raise DocExampleError(f"{block.where}: the python block does not compile: {e}") from e
        first = block.text.splitlines()[0] if block.text else ""
        saved = re.fullmatch(r"#\s*([\w./-]+\.py)\s*", first)
        if saved:
            target = self.cwd / saved[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text + "\n", encoding="utf-8")
        return self._spawn([sys.executable, "-c", block.text], block)

    def _spawn(self, argv: list[str], block: Block) -> Ran:
        # A session of its own, so a block that never ends is stopped with everything it
        # started (a `conductor worker` without --burst outlives a killed bash otherwise).
        with subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        ) as process:
            try:
                output, _ = process.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise DocExampleError(
                    f"{block.where}: the block ran for more than {TIMEOUT:.0f} s; "
                    "mark it <!-- not run: why --> if it is not meant to end"
                ) from None
        return Ran(code=process.returncode, output=output)


def _exported(path: Path, current: dict[str, str]) -> dict[str, str]:
    """The variables `export -p` listed, read back through bash so quoting is bash's."""
    done = subprocess.run(
        ["bash", "-c", f'source "{path}"; env -0'],
        env=current,
        capture_output=True,
        check=True,
    )
    pairs = (item.split(b"=", 1) for item in done.stdout.split(b"\0") if b"=" in item)
    return {key.decode(): value.decode() for key, value in pairs if key.decode() != "_"}


def check(example: Example, ran: Ran) -> None:
    """Raise DocExampleError, naming the file and line, if a block did not do as documented."""
    block = example.block
    expected_code = int(block.markers.get("exit", "0"))
    if ran.code != expected_code:
        raise DocExampleError(
            f"{block.where}: the {block.language} block exited {ran.code}, "
            f"expected {expected_code}; it printed:\n{ran.output}"
        )
    if example.expected is None:
        return
    shown = example.expected
    any_order = shown.markers.get("output") == "any order"
    if matches(shown.text, ran.output, any_order=any_order):
        return
    diff = "\n".join(
        difflib.unified_diff(
            normalise(shown.text).splitlines(),
            normalise(ran.output).splitlines(),
            fromfile=f"{shown.where} (the doc, normalised)",
            tofile=f"what the block at {block.where} printed (normalised)",
            lineterm="",
        )
    )
    order = " (in any order)" if any_order else ""
    raise DocExampleError(
        f"{shown.where}: the output shown{order} is not what the block at {block.where} "
        f"prints:\n{diff}\n-- printed, as is:\n{ran.output}"
    )


def run_doc(path: Path, markdown: str | None = None) -> int:
    """Run every example of one doc in order in a fresh directory; return how many ran."""
    runnable = examples(parse(path, markdown))
    with tempfile.TemporaryDirectory(prefix="conductor-doc-") as directory:
        session = Session(Path(directory))
        for example in runnable:
            check(example, session.run(example.block))
    return len(runnable)


def documents() -> list[Path]:
    """README.md and docs/*.md, except docs/cli.md, which is generated from the commands."""
    return [
        ROOT / "README.md",
        *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "cli.md"),
    ]
