"""What every event class shares: encoding to and decoding from its stored `data`.

Its own module so that the job events (`events.py`) and the operations events
(`control_events.py`) both build on it without importing each other; `events.py` gathers
both into the one catalogue the ledger decodes from.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import attrs

from conductor.domain.codec import canonical_json, loads

_FIELD_NAMES: Final[dict[type, tuple[str, ...]]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """An event class's field names, looked up once (`attrs.asdict` walks them per call)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(field.name for field in attrs.fields(cls))
    return names


class EventBase:
    """Shared behaviour of event classes: encode to and decode from stored `data`."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]

    def fields(self) -> dict[str, Any]:
        """The event's fields by name (`attrs.asdict` at half the cost: they are flat)."""
        return {name: getattr(self, name) for name in _field_names(type(self))}

    def encode(self) -> str:
        """The stored `data` JSON for this event (its fields are flat: str, int, None)."""
        return canonical_json(self.fields())

    @classmethod
    def decode(cls, data: str) -> Any:
        """Rebuild the event from current-version stored `data`."""
        return cls(**cls.decode_fields(data))

    @classmethod
    def decode_fields(cls, data: str) -> dict[str, Any]:
        """The fields of the event stored as current-version `data`, by name: what `decode`
        builds the event from, and what a replay folds without building it."""
        fields: dict[str, Any] = loads(data)
        return fields
