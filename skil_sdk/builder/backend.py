"""Run a project's PEP 517 backend to build a wheel, reproducibly.

The backend runs in a subprocess with ``SOURCE_DATE_EPOCH`` and the umask fixed (the
wheel records file modes, which setuptools takes from the umask for the files it writes),
and with ``TMPDIR`` in a scratch folder removed after each call. When the project's
build requirements are installed in this interpreter it runs with a view of just those
(:mod:`skil_sdk.builder.buildenv`: no fresh isolated environment to create, which costs
seconds, and no scan of every installed distribution); otherwise in a build environment
created once per set of requirements under ``SKIL_HOME/cache/build-envs`` and reused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import warnings
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from skil_sdk.builder import cache
from skil_sdk.errors import BuildError
from skil_sdk.storage import atomic_directory, sha256_bytes, sweep_stale

Progress = Callable[[str], None]
SOURCE_DATE_EPOCH = "315532800"
#: The umask of every backend run: group and others may read what it writes.
BUILD_UMASK = 0o022
_DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"
_DEFAULT_REQUIRES = ["setuptools>=40.8.0"]
_TAIL_LINES = 25


def build_wheel(
    src: Path,
    out: Path,
    *,
    label: str,
    find_links: Sequence[Path] = (),
    no_index: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Build the wheel of the project in ``src`` into ``out`` and return its path."""
    from pyproject_hooks import BackendUnavailable, BuildBackendHookCaller, HookMissing

    build_system = _build_system(src, label)
    requires = [str(r) for r in build_system.get("requires", _DEFAULT_REQUIRES)]
    backend = str(build_system.get("build-backend", _DEFAULT_BACKEND))
    backend_path = build_system.get("backend-path")
    log: list[str] = []
    python, view = sys.executable, None
    if requirements_satisfied(requires):
        from skil_sdk.builder.buildenv import try_installed_view

        view = try_installed_view(requires)
    else:
        python = build_env(requires, find_links, no_index, progress)
    runner = _runner(log, view)
    caller = BuildBackendHookCaller(
        str(src), backend, backend_path, runner=runner, python_executable=python
    )
    try:
        if python != sys.executable:
            extra = list(caller.get_requires_for_build_wheel({}))
            if extra and not requirements_satisfied(extra, python):
                _pip_install(python, extra, find_links, no_index, log)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            filename = caller.build_wheel(str(out), {})
        log.extend(f"{w.category.__name__}: {w.message}\n" for w in caught)
    except (subprocess.CalledProcessError, BackendUnavailable, HookMissing) as exc:
        tail = "\n".join("".join(log).splitlines()[-_TAIL_LINES:])
        raise BuildError(
            f"Building the wheel of {label} failed ({type(exc).__name__}); fix the project and "
            f"build again. Last lines of the build output:\n{tail}"
        ) from exc
    return out / filename


def _build_system(src: Path, label: str) -> dict[str, Any]:
    pyproject = src / "pyproject.toml"
    if not pyproject.exists():
        return {}
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, ValueError) as exc:
        raise BuildError(f"pyproject.toml of {label} is not valid TOML ({exc}); fix it.") from exc
    build_system = data.get("build-system", {})
    return build_system if isinstance(build_system, dict) else {}


def _runner(log: list[str], view: Path | None) -> Callable[..., None]:
    """A pyproject_hooks runner: output captured, fixed epoch and umask, own TMPDIR, and the
    view if there is one."""

    def run(
        cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        env = os.environ.copy()
        env.update(extra_environ or {})
        env["SOURCE_DATE_EPOCH"] = SOURCE_DATE_EPOCH
        env["PYTHONHASHSEED"] = "0"
        env.pop("PYTHONPATH", None)
        if view is not None:
            # No site-packages: the backend sees only the view's distributions.
            cmd = [cmd[0], "-S", *cmd[1:]]
            env["PYTHONPATH"] = str(view)
        with cache.tool_env(env) as tool_env:
            proc = subprocess.run(
                list(cmd),
                cwd=cwd,
                env=tool_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                umask=BUILD_UMASK,
            )
        log.append(proc.stdout.decode("utf-8", "replace"))
        proc.check_returncode()

    return run


def requirements_satisfied(requires: Sequence[str], python: str | None = None) -> bool:
    """Whether every requirement is installed (in this interpreter when ``python`` is None)."""
    from packaging.requirements import InvalidRequirement, Requirement

    if python is not None and python != sys.executable:
        code = "import sys, importlib.metadata as m; [m.version(a) for a in sys.argv[1:]]"
        try:
            names = [Requirement(r).name for r in requires]
        except InvalidRequirement:
            return False
        return subprocess.run([python, "-c", code, *names], capture_output=True).returncode == 0
    for raw in requires:
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            return False
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            return False
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            return False
    return True


def build_env(
    requires: Sequence[str],
    find_links: Sequence[Path] = (),
    no_index: bool = False,
    progress: Progress | None = None,
) -> str:
    """The interpreter of a reusable build environment holding ``requires``."""
    key = sha256_bytes("\n".join([*sorted(requires), sys.implementation.cache_tag]).encode())[:24]
    target = cache.build_envs_dir() / key
    python = target / "bin" / "python"
    if python.exists():
        return str(python)
    sweep_stale(target.parent)
    with atomic_directory(target) as ad:
        if not ad.is_finalized():
            if progress:
                progress(f"Creating a build environment with {', '.join(requires)}")
            log: list[str] = []
            with cache.tool_env() as env:
                subprocess.run(
                    [sys.executable, "-m", "venv", "--without-pip", str(ad.work_dir)],
                    check=True,
                    capture_output=True,
                    env=env,
                )
            _pip_install(str(ad.work_dir / "bin" / "python"), requires, find_links, no_index, log)
    return str(python)


def _pip_install(
    python: str,
    requires: Sequence[str],
    find_links: Sequence[Path],
    no_index: bool,
    log: list[str],
) -> None:
    cmd = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet"]
    cmd += [f"--find-links={p}" for p in find_links]
    cmd += ["--no-index"] if no_index else []
    with cache.tool_env() as env:
        proc = subprocess.run(
            [*cmd, *requires], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
    log.append(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-_TAIL_LINES:])
        raise BuildError(
            f"Installing the build requirements {', '.join(requires)} failed; pass "
            f"`--find-links DIR` with their wheels or check the network. Last lines:\n{tail}"
        )
