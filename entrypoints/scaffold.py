"""``keel new NAME``: scaffold a bounded context, a wing on every floor of the hexagon.

The files come from templates kept beside this module, in
``entrypoints/templates/context``: a tree mirroring the project's, where
``NAME`` in a path becomes the context's name, the ``.tmpl`` suffix is dropped,
and ``${name}`` / ``${Name}`` in the text become the name and its CamelCase
form (:class:`string.Template`: no template engine to install). The suffix
keeps the templates away from ruff, mypy and pytest.

What comes out must pass the project's ruff, ``mypy --strict`` and its own
tests as generated. Ruff orders imports by module and member name, and the
order depends on the context's name, so each block of imports is put in
ruff's order after substitution (:func:`sort_imports`).
"""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).with_name("templates") / "context"
"""The template tree; its top folders are the layers a context has a folder in."""
TEMPLATE_SUFFIX = ".tmpl"
PATH_PLACEHOLDER = "NAME"

LAYERS = ("domain", "adapters", "service_layer", "entrypoints", "tests")
"""The project's top-level packages; a new context gets one folder in each."""
PACKAGES = LAYERS[:-1]
"""Where no two classes may share a name (``tests/kernel/test_architecture.py``)."""

RESERVED = frozenset(
    {
        # Kernel folders inside the layers, present or expected.
        "alembic",
        "brokers",
        "contract",
        "e2e",
        "faults",
        "http",
        "kernel",
        "migrations",
        "support",
        "templates",
        "versions",
        # The project's own top-level names: a context called so would only confuse.
        *LAYERS,
        "bench",
        "docs",
        "keel",
        "scripts",
    }
)
"""Names the kernel keeps for itself, whether or not a folder of that name exists yet."""

MAX_NAME_LENGTH = 20
"""Long enough for a domain's name; short enough that generated lines stay under 100."""
LINE_LENGTH = 100
"""The project's ruff line length, which import statements are wrapped at."""

_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_IMPORT = re.compile(r"(?:from [\w.]+ import |import [\w.]+)")


class ScaffoldError(ValueError):
    """The name is unusable or the context exists already."""


def camel_case(name: str) -> str:
    """``stock_room`` → ``StockRoom``: the prefix of the context's class names."""
    return "".join(part.capitalize() for part in name.split("_"))


def check_name(name: str, root: Path) -> None:
    """Refuse a name that cannot be a new context in the project at ``root``.

    A context's name is a package in every layer and the prefix of its tables,
    routes, messages and classes, so it must be a lower-case identifier, not a
    keyword, not a name the kernel keeps, not taken in any layer, and must not
    make a class name that the project already has (``in_memory`` would make a
    second ``InMemoryUnitOfWork``).
    """
    if _NAME.fullmatch(name) is None:
        raise ScaffoldError(
            f"{name!r} is not a usable context name: use a lower-case Python identifier "
            "(letters a-z and digits, words joined by single underscores, starting with "
            "a letter), e.g. 'library' or 'stock_room'"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword and cannot name a package")
    if len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(
            f"{name!r} is {len(name)} characters long; keep a context's name to "
            f"{MAX_NAME_LENGTH} at most"
        )
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} is reserved by the Keel kernel; pick another name")
    taken = [
        f"{layer}/{entry}"
        for layer in LAYERS
        for entry in (name, f"{name}.py")
        if (root / layer / entry).exists()
    ]
    if taken:
        raise ScaffoldError(
            f"{name!r} is taken: {', '.join(taken)} exists already; pick another name "
            "or remove what is there"
        )
    existing = _classes(
        (path.relative_to(root), path.read_text(encoding="utf-8"))
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
    )
    generated = _classes(render(name).items())
    clashes = sorted(
        f"{cls} ({existing[cls].as_posix()})" for cls in generated.keys() & existing.keys()
    )
    if clashes:
        raise ScaffoldError(
            f"{name!r} would define classes the project has already: {', '.join(clashes)}; "
            "pick another name"
        )


def _classes(sources: Iterable[tuple[Path, str]]) -> dict[str, Path]:
    """The top-level classes of the modules of the four packages, with where each is."""
    found: dict[str, Path] = {}
    for path, text in sources:
        if path.parts[0] not in PACKAGES or "migrations" in path.parts or path.suffix != ".py":
            continue
        for node in ast.parse(text).body:
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, path)
    return found


def _check_project(root: Path) -> None:
    missing = [layer for layer in LAYERS if not (root / layer).is_dir()]
    if missing:
        raise ScaffoldError(
            f"{root} does not look like a Keel project: no {', '.join(missing)} folder "
            "(run 'keel new' in the project's root, or pass --root)"
        )


@dataclass(frozen=True)
class _Import:
    """One import statement: ``from module import members`` or ``import module``."""

    module: str
    members: tuple[str, ...]

    @classmethod
    def parse(cls, lines: list[str]) -> _Import:
        text = " ".join(line.strip() for line in lines)
        if text.startswith("import "):
            return cls(text.removeprefix("import "), ())
        module, _, rest = text.removeprefix("from ").partition(" import ")
        names = rest.replace("(", " ").replace(")", " ").split(",")
        return cls(module, tuple(name.strip() for name in names if name.strip()))

    def render(self) -> list[str]:
        """One line if it fits, else one member per line with a trailing comma, as ruff does."""
        if not self.members:
            return [f"import {self.module}"]
        members = sorted(self.members, key=_member_key)
        line = f"from {self.module} import {', '.join(members)}"
        if len(line) <= LINE_LENGTH:
            return [line]
        return [f"from {self.module} import (", *(f"    {member}," for member in members), ")"]


def _member_key(member: str) -> tuple[int, str, str]:
    """Ruff's isort order: constants, then classes, then the rest, case-insensitively."""
    bare = member.split(" as ")[0]
    if len(bare) > 1 and bare.isupper():
        kind = 0
    elif bare[:1].isupper():
        kind = 1
    else:
        kind = 2
    return kind, bare.lower(), bare


def _statement_key(statement: _Import) -> tuple[bool, str, str]:
    """Ruff's isort order within a section: ``import x`` first, then by module."""
    return bool(statement.members), statement.module.lower(), statement.module


def sort_imports(source: str) -> str:
    """Put each block of top-level imports (lines between blank ones) in ruff's order.

    Only what the templates use is understood: ``import a.b [as c]`` and
    ``from a.b import c, d``, on one line or parenthesised one member per line.
    """
    lines = source.split("\n")
    result: list[str] = []
    index = 0
    while index < len(lines):
        block: list[_Import] = []
        while index < len(lines) and _IMPORT.match(lines[index]):
            end = index
            if lines[index].endswith("("):
                while lines[end] != ")":
                    end += 1
            block.append(_Import.parse(lines[index : end + 1]))
            index = end + 1
        if block:
            for statement in sorted(block, key=_statement_key):
                result.extend(statement.render())
        else:
            result.append(lines[index])
            index += 1
    return "\n".join(result)


def render(name: str) -> dict[Path, str]:
    """Every file of a context called ``name``: its path in the project, and its text."""
    values = {"name": name, "Name": camel_case(name)}
    rendered: dict[Path, str] = {}
    for template in sorted(TEMPLATES.rglob(f"*{TEMPLATE_SUFFIX}")):
        relative = template.relative_to(TEMPLATES)
        target = Path(
            *(part.replace(PATH_PLACEHOLDER, name) for part in relative.parts)
        ).with_suffix("")
        text = Template(template.read_text(encoding="utf-8")).substitute(values)
        rendered[target] = sort_imports(text) if target.suffix == ".py" else text
    if not rendered:
        raise ScaffoldError(f"no templates found in {TEMPLATES}; is Keel installed completely?")
    return rendered


def scaffold(name: str, root: Path) -> list[Path]:
    """Write a context called ``name`` into the project at ``root``; the files written.

    Nothing is written unless every check passes, and no existing file is
    ever overwritten.
    """
    root = root.resolve()
    _check_project(root)
    check_name(name, root)
    files = render(name)
    written: list[Path] = []
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("x", encoding="utf-8") as output:
            output.write(text)
        written.append(target)
    return written
