"""Who is asking: the authenticated subject behind a command or a read.

The entrypoints build it — HTTP from a verified bearer token, the message
consumer from a signed command's envelope — and the service layer decides
what the subject may do. Plain data, so the domain's commands can carry it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """An authenticated subject (a token's ``sub``) and the scopes it was granted.

    ``scopes`` is empty for a principal that came with a signed command: the
    signature vouches for the whole command, and scopes are an HTTP matter.
    """

    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not isinstance(self.subject, str) or not self.subject:
            raise ValueError("a principal needs a non-empty subject")

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
