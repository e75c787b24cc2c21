"""The documentation stays true to the code: each test fails when the two drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from conductor.cli import docs as clidocs
from conductor.domain.events import EVENT_CLASSES
from conductor.domain.states import TRANSITIONS, JobState

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

DEMO_COMMAND = "python -m pip install -e . && conductor demo"
TEST_COMMAND = "python -m pip install -e '.[dev]' && just lint && just test"


def fenced_blocks(markdown: str) -> list[str]:
    """The contents of each ``` fenced block, in order."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def sections(markdown: str) -> dict[str, str]:
    """Each heading line mapped to the text up to the next heading."""
    found: dict[str, str] = {}
    heading: str | None = None
    body: list[str] = []
    for line in [*markdown.splitlines(), "# end"]:
        if line.startswith("#"):
            if heading is not None:
                found[heading] = "\n".join(body)
            heading, body = line, []
        else:
            body.append(line)
    return found


def test_cli_reference_matches_the_click_commands() -> None:
    committed = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert committed == clidocs.render(), (
        "docs/cli.md is out of date with the click commands; regenerate it with `just docs`"
    )


def test_cli_reference_has_a_section_for_every_command() -> None:
    rendered = clidocs.render()
    for path in clidocs.commands():
        assert f"\n## conductor {path}\n" in rendered


@pytest.mark.parametrize("event_type", sorted(EVENT_CLASSES))
def test_every_event_type_is_in_the_event_catalogue(event_type: str) -> None:
    catalogue = (DOCS / "events.md").read_text(encoding="utf-8")
    named = re.compile(rf"`{re.escape(event_type)}`")
    lines = [
        line
        for line in catalogue.splitlines()
        if line.startswith(("#", "|")) and named.search(line)
    ]
    assert lines, f"docs/events.md has no heading or table row naming `{event_type}`"


@pytest.mark.parametrize("event_type", sorted(EVENT_CLASSES))
def test_each_event_section_names_its_class_version_and_data_fields(event_type: str) -> None:
    cls = EVENT_CLASSES[event_type]
    catalogue = sections((DOCS / "events.md").read_text(encoding="utf-8"))
    matching = [body for heading, body in catalogue.items() if f"`{event_type}`" in heading]
    if not matching:
        pytest.skip(f"`{event_type}` is documented by a table row, not a section")
    body = matching[0]
    assert cls.__name__ in body
    assert f"version {cls.VERSION}" in body.lower()
    for field in attrs.fields(cls):
        assert f"`{field.name}`" in body, f"{event_type}: data field `{field.name}` undocumented"


def test_architecture_transition_table_matches_states_py() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    states = {"(none)", *(state.value for state in JobState)}
    documented = set()
    for line in text.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in states and cells[1] in EVENT_CLASSES:
            documented.add((cells[0], cells[1], cells[2]))
    expected = {
        ("(none)" if before is None else before.value, event_type, after.value)
        for (before, event_type), after in TRANSITIONS.items()
    }
    assert documented == expected, (
        f"docs/architecture.md's transition table drifted from conductor/states.py: "
        f"missing {sorted(expected - documented)}, extra {sorted(documented - expected)}"
    )


def test_readme_opens_with_the_demo_and_the_test_command() -> None:
    blocks = fenced_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 2
    assert blocks[0].strip() == DEMO_COMMAND
    assert blocks[1].strip() == TEST_COMMAND


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST_COMMAND in [line.strip() for line in script.splitlines()]


def _prose_docs() -> list[Path]:
    return [ROOT / "README.md", *sorted(p for p in DOCS.glob("*.md") if p.name != "cli.md")]


def test_every_source_file_a_doc_names_exists() -> None:
    named = re.compile(r"\b((?:conductor|projections|tests)/[\w/]+\.py)\b")
    missing = [
        f"{doc.name}:{number}: {path}"
        for doc in _prose_docs()
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        for path in named.findall(line)
        if not (ROOT / path).exists()
    ]
    assert not missing, f"docs name files that do not exist: {missing}"


def test_every_test_a_doc_cites_as_proof_exists() -> None:
    defined = {
        name
        for source in (ROOT / "tests").rglob("*.py")
        for name in re.findall(r"^\s*def (test_\w+)", source.read_text(encoding="utf-8"), re.M)
    }
    # A full name, or a prefix ending in `...` (`test_sigkill_mid_run_...`).
    cited = re.compile(r"\b(test_\w+?)(_?\.\.\.)?(?=[`:,)\s]|$)")
    missing = [
        f"{doc.name}:{number}: {found.group(0)}"
        for doc in _prose_docs()
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        for found in cited.finditer(line)
        if not (
            any(name.startswith(found.group(1).rstrip("_")) for name in defined)
            if found.group(2)
            else found.group(1) in defined
        )
    ]
    assert not missing, f"docs cite tests that do not exist: {missing}"
