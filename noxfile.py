"""nox sessions: tests, lint, typecheck, docs, demo, bench.

Every session runs in the project's one virtualenv (``.venv``, made by ``./dev``):
pyspark alone is about 450 MB, so sessions share it instead of building their own.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "typecheck", "tests"]

SOURCES = ["skil_sdk", "tests", "bench", "docs", "noxfile.py", "examples"]


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff over the code (the template's Jinja-laden .py files are excluded)."""
    session.run("ruff", "check", *SOURCES)


@nox.session(python=False)
def typecheck(session: nox.Session) -> None:
    """mypy over the package."""
    session.run("mypy", "skil_sdk")


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """The whole test suite: quick tests first, then the slow Spark and build tests."""
    session.run("pytest", *session.posargs)


@nox.session(python=False)
def docs(session: nox.Session) -> None:
    """Regenerate the CLI reference (docs/cli.md) from the commands themselves."""
    session.run("python", "docs/gen_cli_reference.py", "docs/cli.md")


@nox.session(python=False)
def demo(session: nox.Session) -> None:
    """The main job end to end on local Spark: model, data, provider, build, infer, results."""
    session.run("python", "examples/digits_demo.py", *session.posargs)


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Benchmarks (not run by default): bench/build.py, bench/serve.py, bench/session.py."""
    for script in ("bench/build.py", "bench/serve.py", "bench/session.py"):
        session.run("python", script, *session.posargs)
