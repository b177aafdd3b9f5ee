"""Development sessions: tests, one isolated run per distribution, lint, types, benchmarks.

nox -s tests            every distribution in one venv, every test
nox -s tests-py3.13     the core's and the server's tests again on CPython 3.13
nox -s tests-unprivileged   as root: the local runner's tests again as an ordinary uid
nox -s dist-<folder>    one distribution from its built wheel, alone, its own tests
nox -s lint typecheck   ruff and mypy --strict across the namespace
nox -s demo             the platform on the embedded default
nox -s bench -- pg      benchmarks (all when no name is given)
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["lint", "typecheck", "tests"]

ROOT = Path(__file__).parent
DIST_PARENTS = ("packages", "stores", "runners", "routers", "sources", "observability")
TEST_DEPS = [
    "pytest>=8",
    "pytest-asyncio>=0.24",
    "pytest-timeout>=2.3",
    "httpx>=0.27",
    "hypothesis>=6.100",
]
PASSENV_NOTE = "MASTRA_ADMIN_TEST_DATABASE_URL and MASTRA_ADMIN_TEST_CLICKHOUSE_URL pass through"


def _distributions() -> dict[str, Path]:
    """Every distribution folder in the tree, keyed by distribution name."""
    found: dict[str, Path] = {}
    for parent in DIST_PARENTS:
        for pyproject in sorted((ROOT / parent).glob("*/pyproject.toml")):
            name = tomllib.loads(pyproject.read_text())["project"]["name"]
            found[name] = pyproject.parent
    return found


def _requirement_name(requirement: str) -> str:
    name = requirement.split(";")[0]
    for sep in "<>=!~[ ":
        name = name.split(sep)[0]
    return name


def _local_test_deps(folder: Path, dists: dict[str, Path]) -> list[str]:
    """Distributions of this tree that ``folder``'s tests need (``[dependency-groups]
    test``), with what they depend on: their wheels are built for ``dist-*`` too."""
    groups = tomllib.loads((folder / "pyproject.toml").read_text()).get("dependency-groups", {})
    wanted: list[str] = []
    for requirement in groups.get("test", []):
        name = _requirement_name(requirement) if isinstance(requirement, str) else ""
        if name in dists and name not in wanted:
            wanted += [name, *(d for d in _local_deps(dists[name], dists) if d not in wanted)]
    return wanted


def _local_deps(folder: Path, dists: dict[str, Path]) -> list[str]:
    """The distributions of this tree that ``folder`` depends on (transitively)."""
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    wanted: list[str] = []
    for requirement in project.get("dependencies", []):
        name = requirement.split(";")[0]
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        if name in dists and name not in wanted:
            wanted.append(name)
            wanted += [d for d in _local_deps(dists[name], dists) if d not in wanted]
    return wanted


def _test_paths() -> list[str]:
    paths = [str(p / "tests") for p in _distributions().values() if (p / "tests").is_dir()]
    if (ROOT / "tests").is_dir():
        paths.append("tests")
    return paths


def _extra_test_deps() -> list[str]:
    """Test-only requirements declared by distributions (``[dependency-groups] test``)."""
    extra: list[str] = []
    for folder in _distributions().values():
        groups = tomllib.loads((folder / "pyproject.toml").read_text()).get("dependency-groups", {})
        extra += [d for d in groups.get("test", []) if isinstance(d, str)]
    return sorted(set(extra))


def _with_embedded(folder: Path) -> str:
    """The folder as a requirement, with its ``embedded`` extra when it has one: the
    development install is the whole default platform, engines included."""
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    return (
        f"{folder}[embedded]"
        if "embedded" in project.get("optional-dependencies", {})
        else str(folder)
    )


def _install_all_editable(session: nox.Session) -> None:
    args: list[str] = []
    for folder in _distributions().values():
        args += ["-e", _with_embedded(folder)]
    session.install(*args, *TEST_DEPS, *_extra_test_deps())


def _interpreter(version: str) -> str:
    """An interpreter of ``version``: pyenv's when it has one (its shims answer only for
    the selected versions, which uv cannot use), else whatever uv finds."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob(f"{version}.*/bin/python{version}"))
    return str(found[-1]) if found else version


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Every distribution installed together; every test in the tree."""
    _install_all_editable(session)
    env = {k: v for k, v in os.environ.items() if k.startswith("MASTRA_ADMIN_TEST_")}
    session.run("pytest", *_test_paths(), *session.posargs, env=env)


SECOND_PYTHON = "3.13"
"""The other CPython the core and the server are tested on (3.11 is the first)."""


@nox.session(name=f"tests-py{SECOND_PYTHON}", python=_interpreter(SECOND_PYTHON))
def tests_second_python(session: nox.Session) -> None:
    """The core's and the server's tests on the newest supported CPython, on the
    embedded engines only: a second PostgreSQL server tests the storage, not Python
    (the first Python's run covers it), and would double this session's time."""
    _install_all_editable(session)
    env = {"MASTRA_ADMIN_TEST_DATABASE_URL": "", "MASTRA_ADMIN_TEST_CLICKHOUSE_URL": ""}
    folders = [_distributions()[name] / "tests" for name in ("mastra-admin", "mastra-admin-server")]
    # The web UI's browser tests test the browser's side: once, on the first Python.
    ui = _distributions()["mastra-admin-server"] / "tests" / "ui"
    session.run("pytest", *map(str, folders), "--ignore", str(ui), *session.posargs, env=env)


def _dist_session(folder: Path) -> None:
    dist_name = tomllib.loads((folder / "pyproject.toml").read_text())["project"]["name"]

    @nox.session(name=f"dist-{folder.parent.name}-{folder.name}", python="3.11")
    def _session(session: nox.Session) -> None:
        dists = _distributions()
        wheel_dir = Path(session.create_tmp()) / "wheels"
        wheel_dir.mkdir(exist_ok=True)
        local = [dist_name, *_local_deps(folder, dists), *_local_test_deps(folder, dists)]
        for name in dict.fromkeys(local):
            session.run(
                "uv",
                "build",
                "--wheel",
                "--out-dir",
                str(wheel_dir),
                str(dists[name]),
                external=True,
            )
        groups = tomllib.loads((folder / "pyproject.toml").read_text()).get("dependency-groups", {})
        own_test_deps = [d for d in groups.get("test", []) if isinstance(d, str)]
        session.install("--find-links", str(wheel_dir), dist_name, *TEST_DEPS, *own_test_deps)
        if (folder / "tests").is_dir():
            session.run("pytest", str(folder / "tests"), *session.posargs)

    _session.__doc__ = f"{dist_name} alone, from its wheel, with its own tests."


for _folder in _distributions().values():
    _dist_session(_folder)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict across the whole mastra_admin namespace."""
    _install_all_editable(session)
    session.install("mypy>=1.11", "types-psutil")
    sources = [str(p / "src") for p in _distributions().values() if (p / "src").is_dir()]
    session.run("mypy", *sources)


UNPRIVILEGED_UID = 1_900_000_000
"""A uid with no account and no files: what an ordinary user running the platform is."""


@nox.session(name="tests-unprivileged", venv_backend="none")
def tests_unprivileged(session: nox.Session) -> None:
    """The local runner's tests as an ordinary user (its sandbox then runs in a user
    namespace of that user instead of under per-deployment uids). As root, they run
    as ``UNPRIVILEGED_UID`` from a copy of the tests and a venv in a folder that uid
    can read (the checkout and the usual venvs may sit under ``/root``); as anyone
    else the ``tests`` session already ran them as an ordinary user."""
    import shutil
    import tempfile

    if os.geteuid() != 0:
        session.log("not root: the tests session ran the runner's tests unprivileged already")
        return
    python = shutil.which("python3.11", path="/usr/bin:/usr/local/bin") or "/usr/bin/python3"
    work = Path(tempfile.mkdtemp(prefix="mastra-admin-unprivileged-"))
    try:
        work.chmod(0o755)
        venv = work / "venv"
        session.run("uv", "venv", "-q", "--python", python, str(venv), external=True)
        dists = _distributions()
        wanted = [
            "mastra-admin-runner-local",
            *_local_deps(dists["mastra-admin-runner-local"], dists),
        ]
        session.run(
            "uv",
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            *(str(dists[name]) for name in wanted),
            *TEST_DEPS,
            external=True,
        )
        tests = work / "runners-local-tests"
        shutil.copytree(dists["mastra-admin-runner-local"] / "tests", tests)
        shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
        for path in [tests, *tests.rglob("*"), work / "pyproject.toml"]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
        home = work / "home"
        home.mkdir(mode=0o755)
        os.chown(home, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        session.chdir(str(work))
        session.run(
            "setpriv",
            f"--reuid={UNPRIVILEGED_UID}",
            f"--regid={UNPRIVILEGED_UID}",
            "--clear-groups",
            "--",
            str(venv / "bin" / "python"),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(work),
            "-c",
            str(work / "pyproject.toml"),
            str(tests),
            *session.posargs,
            env={
                "HOME": str(home),
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "LANG": "C.UTF-8",
                "TMPDIR": "/tmp",
            },
            external=True,
        )
    finally:
        session.chdir(str(ROOT))
        shutil.rmtree(work, ignore_errors=True)


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """Run the platform on the embedded default (PostgreSQL and ClickHouse in-process)."""
    _install_all_editable(session)
    session.run("mastra-admin", "serve", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks; ``nox -s bench -- pg`` runs one. Prints figures and ratios."""
    _install_all_editable(session)
    session.run("python", "-m", "benchmarks", *session.posargs)
