"""The `conductor` command: a thin click shell over `conductor.Conductor`.

`app` holds the group and the entry point; each command group has a module of its own
(`enqueue`, `listings`, `events`, `stats`, `operator`, `maintenance`, `worker`,
`benchmark`, `demo`); `options` holds what they share and `render` how tables, times and
JSON are printed.
"""

from __future__ import annotations

from conductor.cli.app import cli, commands, main

__all__ = ["cli", "commands", "main"]
