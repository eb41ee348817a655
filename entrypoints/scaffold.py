"""``keel new NAME``: scaffold a bounded context in every layer (being written)."""

from __future__ import annotations

from pathlib import Path


class ScaffoldError(ValueError):
    """The name is unusable or the context exists already."""


def scaffold(name: str, root: Path) -> list[Path]:
    raise ScaffoldError("keel new is not available yet")
