"""Developer sessions: ``nox -s tests lint typecheck docs`` (``nox -l`` lists them)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
nox.options.default_venv_backend = "venv"

PLUGIN = "./tests/plugins/audiovec-example-plugin"


@nox.session
def tests(session: nox.Session) -> None:
    """The default test suite (as CI runs it)."""
    session.install("-e", ".[faiss,milvus,serve,test]")
    session.install("--no-deps", PLUGIN)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[faiss,milvus,serve]", "mypy>=1.10", "pydantic>=2.5")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Run the docstring examples and every script in examples/ (they must work as documented); build the site."""
    session.install("-e", ".[faiss,milvus,serve,test]")
    session.run("pytest", "--doctest-modules", "src/audiovec", "-o", "addopts=", "-q")
    for script in sorted(__import__("pathlib").Path("examples").glob("*.py")):
        session.run("python", str(script))
    session.install("-r", "docs/requirements.txt")
    session.run("mkdocs", "build", "--strict", "-d", "site")
