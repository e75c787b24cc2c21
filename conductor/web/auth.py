"""Who may use the dashboard: access tokens, each with the name actions are recorded under.

A token comes from `CONDUCTOR_DASHBOARD_TOKEN` or a token file (`--token-file`), one per
line, either `NAME:TOKEN` or a bare `TOKEN` (recorded as `dashboard`). A browser signs in
once with a token on the login form and carries a signed session cookie; scripts send
`Authorization: Bearer TOKEN` to `/api`. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import attrs

from conductor.domain.errors import InvalidInput

ENV_VARIABLE: Final = "CONDUCTOR_DASHBOARD_TOKEN"
DEFAULT_NAME: Final = "dashboard"
MIN_TOKEN: Final = 16
"""The fewest characters a token may have: short ones are guessable over the network."""
_NAME: Final = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@attrs.frozen
class Credentials:
    """The accepted tokens, each mapped to the operator name it signs in as."""

    tokens: Mapping[str, str]

    def who(self, token: str) -> str | None:
        """The name `token` signs in as, or None. Every token is compared, in constant
        time, so the answer's timing says nothing about which one nearly matched."""
        found = None
        offered = token.encode("utf-8", "surrogateescape")
        for known, name in self.tokens.items():
            if hmac.compare_digest(offered, known.encode("utf-8")):
                found = name
        return found

    @classmethod
    def parse(cls, text: str, source: str) -> Credentials:
        """Tokens from `text` (lines of `NAME:TOKEN` or `TOKEN`); `source` names where it
        came from in errors. Blank lines and `#` comments are skipped."""
        tokens: dict[str, str] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, token = line.partition(":")
            if not sep:
                name, token = DEFAULT_NAME, line
            name, token = name.strip(), token.strip()
            if not _NAME.fullmatch(name):
                raise InvalidInput(
                    f"invalid token name {name!r} in {source} line {number}: expected "
                    "letters, digits, '_', '.', '@' or '-' before the ':'"
                )
            if len(token) < MIN_TOKEN or any(c.isspace() for c in token):
                raise InvalidInput(
                    f"invalid token in {source} line {number}: expected at least "
                    f"{MIN_TOKEN} characters without spaces"
                )
            tokens[token] = name
        if not tokens:
            raise InvalidInput(f"no token in {source}: expected lines of NAME:TOKEN or TOKEN")
        return cls(tokens=tokens)

    @classmethod
    def load(cls, token_file: str | None = None) -> Credentials | None:
        """The credentials of a token file, else of `CONDUCTOR_DASHBOARD_TOKEN`, else None."""
        if token_file is not None:
            try:
                text = Path(token_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise InvalidInput(
                    f"cannot read token file {token_file}: {getattr(e, 'strerror', None) or e}; "
                    "expected a readable UTF-8 file of NAME:TOKEN lines"
                ) from None
            return cls.parse(text, token_file)
        value = os.environ.get(ENV_VARIABLE)
        if value is None or not value.strip():
            return None
        return cls.parse(value, ENV_VARIABLE)
