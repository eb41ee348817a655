"""``keel new``: the names it takes, and the context it writes, checked as generated.

The unit tests call :mod:`entrypoints.scaffold` and the CLI's ``main`` in
process. The end-to-end tests work on a copy of the project (the files git
knows, plus a link to the virtualenv), never on the checkout: ``keel new
library`` runs there, then the project's own ruff, ``mypy --strict`` and
pytest check what it wrote, each in a subprocess with a time limit and the
copy first on ``PYTHONPATH``, so that the copy's modules are the ones
imported. The guide's commands (``docs/new-context.md``) run in a copy of
their own. About 30 s in all on two cores, most of it mypy and pytest.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.settings import Settings
from entrypoints import cli
from entrypoints.scaffold import (
    LAYERS,
    MAX_NAME_LENGTH,
    ScaffoldError,
    check_name,
    render,
    scaffold,
    sort_imports,
)

ROOT = Path(__file__).resolve().parents[2]
GUIDE = Path("docs") / "new-context.md"
NAME = "library"
TIMEOUT_SECONDS = 120
"""Per subprocess; a healthy run of the slowest (mypy, cold) takes about ten seconds."""
EXIT_USAGE = 2
GUIDE_COMMANDS = frozenset({"new", "migrate", "revision"})


# -- helpers -------------------------------------------------------------------------------


def _project_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=TIMEOUT_SECONDS,
    )
    names = listed.stdout.decode().split("\0")
    return [Path(name) for name in names if name and (ROOT / name).is_file()]


def copy_project(target: Path) -> Path:
    """The project's files (tracked or not ignored) copied to ``target``; ``.venv`` linked."""
    for relative in _project_files():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, target / relative)
    if (ROOT / ".venv").exists():
        (target / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    return target


def environment(project: Path, **extra: str) -> dict[str, str]:
    """This process's environment without Keel's settings, importing from ``project``."""
    settings = set(Settings.model_fields)
    env = {key: value for key, value in os.environ.items() if key.lower() not in settings}
    env["PYTHONPATH"] = str(project)
    env.update(extra)
    return env


def run(
    project: Path, *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python ARGUMENTS`` in ``project`` with the project's interpreter, time-limited."""
    try:
        return subprocess.run(
            [sys.executable, *arguments],
            cwd=project,
            env=env if env is not None else environment(project),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"'python {shlex.join(arguments)}' did not finish in {TIMEOUT_SECONDS} s")


def keel(
    project: Path, *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run(project, "-m", "entrypoints.cli", *arguments, env=env)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


def context_folders(name: str) -> list[str]:
    return [f"{layer}/{name}" for layer in LAYERS]


def fake_project(root: Path) -> Path:
    for layer in LAYERS:
        (root / layer).mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project in which ``keel new library`` has run."""
    project = copy_project(tmp_path_factory.mktemp("scaffolded"))
    result = keel(project, "new", NAME)
    assert result.returncode == 0, output(result)
    return project


# -- the name (unit) -----------------------------------------------------------------------


@pytest.mark.unit
def test_a_lower_case_identifier_is_a_usable_name(tmp_path: Path) -> None:
    project = fake_project(tmp_path)
    before = sorted(project.rglob("*"))

    check_name("stock_room2", project)

    assert sorted(project.rglob("*")) == before, "checking a name writes nothing"


@pytest.mark.unit
@pytest.mark.parametrize(
    "name", ["9lives", "Library", "stock-room", "_hidden", "stock__room", "room_", "", "café"]
)
def test_a_name_that_is_not_a_lower_case_identifier_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ScaffoldError, match="lower-case Python identifier"):
        check_name(name, fake_project(tmp_path))


@pytest.mark.unit
@pytest.mark.parametrize("name", ["class", "import", "lambda"])
def test_a_python_keyword_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ScaffoldError, match="keyword"):
        check_name(name, fake_project(tmp_path))


@pytest.mark.unit
@pytest.mark.parametrize("name", ["http", "alembic", "brokers", "templates", "support", "kernel"])
def test_a_name_the_kernel_reserves_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ScaffoldError, match="reserved"):
        check_name(name, fake_project(tmp_path))


@pytest.mark.unit
def test_an_overlong_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match=f"{MAX_NAME_LENGTH} at most"):
        check_name("x" * (MAX_NAME_LENGTH + 1), fake_project(tmp_path))


@pytest.mark.unit
@pytest.mark.parametrize("layer", LAYERS)
def test_a_name_taken_in_any_layer_is_refused(tmp_path: Path, layer: str) -> None:
    root = fake_project(tmp_path)
    (root / layer / NAME).mkdir()

    with pytest.raises(ScaffoldError, match=f"{layer}/{NAME} exists"):
        check_name(NAME, root)


@pytest.mark.unit
def test_the_name_of_a_kernel_module_is_refused(tmp_path: Path) -> None:
    root = fake_project(tmp_path)
    (root / "adapters" / "database.py").touch()

    with pytest.raises(ScaffoldError, match=re.escape("adapters/database.py exists")):
        check_name("database", root)


@pytest.mark.unit
def test_a_name_that_would_repeat_a_class_name_is_refused(tmp_path: Path) -> None:
    root = fake_project(tmp_path)
    (root / "adapters" / "unit_of_work.py").write_text("class InMemoryUnitOfWork: ...\n")

    with pytest.raises(ScaffoldError, match=r"InMemoryUnitOfWork \(adapters/unit_of_work\.py\)"):
        check_name("in_memory", root)


@pytest.mark.unit
def test_a_refused_name_writes_nothing(tmp_path: Path) -> None:
    root = fake_project(tmp_path)

    with pytest.raises(ScaffoldError):
        scaffold("class", root)

    assert [path for path in root.rglob("*") if path.is_file()] == []


@pytest.mark.unit
def test_a_folder_that_is_no_keel_project_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="does not look like a Keel project"):
        scaffold(NAME, tmp_path)


# -- the templates (unit) ------------------------------------------------------------------


@pytest.mark.unit
def test_a_context_gets_a_package_in_every_layer_and_no_bench() -> None:
    packages = {path.parent.as_posix() for path in render(NAME) if path.name == "__init__.py"}

    assert packages == set(context_folders(NAME))


@pytest.mark.unit
def test_every_placeholder_is_filled() -> None:
    files = render("stock_room")

    assert [path for path in files if "NAME" in path.as_posix()] == []
    assert [path for path, text in files.items() if "$" in text] == []
    assert Path("adapters/stock_room/migrations/stock_room_0001_create_tables.py") in files


@pytest.mark.unit
def test_imports_are_put_in_ruff_order_for_the_name() -> None:
    source = (
        "import pytest\n\n"
        "from domain.zoo.model import ZooItem, MAX_QUANTITY, check\n"
        "from domain.errors import (\n    NotFound,\n    DomainError,\n)\n"
        "from adapters.zoo import tables, orm\n\nx = 1\n"
    )

    assert sort_imports(source) == (
        "import pytest\n\n"
        "from adapters.zoo import orm, tables\n"
        "from domain.errors import DomainError, NotFound\n"
        "from domain.zoo.model import MAX_QUANTITY, ZooItem, check\n\nx = 1\n"
    )


# -- the generated code (e2e) --------------------------------------------------------------


@pytest.mark.e2e
def test_generated_code_passes_ruff_whatever_the_name(tmp_path: Path) -> None:
    names = ["a", "zz", "aardvark", "m2m", "x_y_z", "w" * MAX_NAME_LENGTH]
    project = copy_project(tmp_path)
    written = [str(path) for name in names for path in scaffold(name, project)]

    checked = run(project, "-m", "ruff", "check", "--no-cache", *written)
    formatted = run(project, "-m", "ruff", "format", "--no-cache", "--check", *written)

    assert checked.returncode == 0, output(checked)
    assert formatted.returncode == 0, output(formatted)


@pytest.mark.e2e
def test_a_new_context_passes_ruff_as_generated(scaffolded: Path) -> None:
    folders = context_folders(NAME)

    checked = run(scaffolded, "-m", "ruff", "check", "--no-cache", *folders)
    formatted = run(scaffolded, "-m", "ruff", "format", "--no-cache", "--check", *folders)

    assert checked.returncode == 0, output(checked)
    assert formatted.returncode == 0, output(formatted)


@pytest.mark.e2e
def test_a_new_context_passes_mypy_strict_as_generated(scaffolded: Path) -> None:
    # The project's own configuration (strict), and a copy of its cache when the
    # real tree has one: the kernel is then checked in a second, not re-checked.
    if (ROOT / ".mypy_cache").is_dir():
        shutil.copytree(ROOT / ".mypy_cache", scaffolded / ".mypy_cache", dirs_exist_ok=True)

    result = run(scaffolded, "-m", "mypy", *context_folders(NAME))

    assert result.returncode == 0, output(result)
    assert "Success" in result.stdout, output(result)


@pytest.mark.e2e
def test_a_new_context_passes_its_own_tests_as_generated(
    scaffolded: Path, postgres_admin_dsn: str
) -> None:
    env = environment(scaffolded, KEEL_TEST_POSTGRES_URL=postgres_admin_dsn)

    result = run(
        scaffolded, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"tests/{NAME}", env=env
    )

    assert result.returncode == 0, output(result)
    assert "skipped" not in result.stdout, output(result)


@pytest.mark.e2e
def test_keel_new_refuses_a_context_that_exists(
    scaffolded: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_CONTEXTS", "")  # the kernel alone: no context is needed
    code = cli.main(["new", NAME, "--root", str(scaffolded)])

    assert code == EXIT_USAGE
    assert f"domain/{NAME}" in capsys.readouterr().err


@pytest.mark.unit
@pytest.mark.parametrize("name", ["9lives", "class"])
def test_keel_new_refuses_a_name_that_cannot_be_a_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("KEEL_CONTEXTS", "")  # the kernel alone: no context is needed
    code = cli.main(["new", name, "--root", str(fake_project(tmp_path))])

    assert code == EXIT_USAGE
    assert repr(name) in capsys.readouterr().err
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


# -- the guide (e2e) -----------------------------------------------------------------------


def guide_commands(markdown: str) -> list[list[str]]:
    """The lines of the guide's ```sh blocks, split into words, comments left out."""
    commands: list[list[str]] = []
    in_block = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```sh"
            continue
        if in_block and line.strip() and not line.lstrip().startswith("#"):
            commands.append(shlex.split(line))
    return commands


def _assignment(word: str) -> tuple[str, str]:
    key, _, value = word.partition("=")
    return key, value


def keel_steps(commands: list[list[str]]) -> list[tuple[dict[str, str], list[str]]]:
    """Each ``keel new|migrate|revision`` command with the variables exported or set for it."""
    exported: dict[str, str] = {}
    steps: list[tuple[dict[str, str], list[str]]] = []
    for words in commands:
        if words[0] == "export":
            exported.update(_assignment(word) for word in words[1:])
            continue
        assignments: dict[str, str] = {}
        while words and "=" in words[0]:
            key, value = _assignment(words.pop(0))
            assignments[key] = value
        if words[:1] == ["keel"] and len(words) > 1 and words[1] in GUIDE_COMMANDS:
            steps.append(({**exported, **assignments}, words[1:]))
    return steps


@pytest.mark.e2e
def test_the_guide_s_commands_add_a_context_and_a_migration(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    steps = keel_steps(guide_commands((project / GUIDE).read_text(encoding="utf-8")))
    assert {arguments[0] for _, arguments in steps} == GUIDE_COMMANDS, steps
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'guide.db'}"

    for variables, arguments in steps:
        env = environment(project, **variables, DATABASE_URL=database_url)
        result = keel(project, *arguments, env=env)
        assert result.returncode == 0, f"keel {shlex.join(arguments)}: {output(result)}"

    migrations = project / "adapters" / NAME / "migrations"
    added = {path.name for path in migrations.glob("*.py")} - {f"{NAME}_0001_create_tables.py"}
    assert len(added) == 1, sorted(added)
