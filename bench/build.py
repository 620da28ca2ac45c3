"""Benchmark of ``skil-sdk build``: cold, no-op and one-edit rebuilds against plain pex.

Run from the repository root::

    .venv/bin/python bench/build.py [--repeat 5]

Writes ``bench/results/build.json`` and the "## Build" section of
``docs/performance.md``. Everything runs in ``bench/work`` (deleted first): fresh
SKIL_HOMEs, an empty wheelhouse for the cold build, a tiny provider project.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from _docsection import replace_section

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "build.json"
DOC = ROOT / "docs" / "performance.md"
CLI = str(Path(sys.executable).parent / "skil-sdk")
COMMAND = ".venv/bin/python bench/build.py"

PROVIDER = textwrap.dedent(
    '''\
    import skil_sdk
    from skil_sdk import KeyedDataSetProvider


    class BenchProvider(KeyedDataSetProvider):
        """Rows 0..9."""

        PLUGIN_NAME = "bench"

        def data(self, spark, **options):
            rows = [(i, [float(i)]) for i in range(10)]
            return spark.createDataFrame(rows, "id long, features array<float>")


    @skil_sdk.hookimpl
    def register_providers(register):
        register(BenchProvider)
    '''
)


def make_project(root: Path) -> Path:
    project = root / "bench-provider"
    (project / "bench_provider").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "bench-provider"
            version = "0.1.0"
            dependencies = ["skil-sdk"]

            [project.entry-points.skil_sdk]
            bench = "bench_provider.provider"
            """
        )
    )
    (project / "bench_provider" / "__init__.py").write_text("")
    (project / "bench_provider" / "provider.py").write_text(PROVIDER)
    return project


def snapshot_sdk(target: Path) -> Path:
    from skil_sdk.builder.wheels import SDK_SOURCE_ENTRIES

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SDK_SOURCE_ENTRIES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        elif source.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def user_home(path: Path) -> dict[str, str]:
    path.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(path), "XDG_CACHE_HOME": str(path / ".cache")}


def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def build(project: Path, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    wall, out = run([CLI, "build", str(project), "--json"], env)
    return wall, json.loads(out)


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    project = make_project(WORK)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SKIL_", "PEX_"))}
    # A snapshot of the SDK source, so that edits made meanwhile do not change the inputs.
    base["PYTHONPATH"] = str(snapshot_sdk(WORK / "sdk-src"))
    # Fresh HOMEs too, so that pip's and pex's user caches are empty for the cold builds.
    env_a = {**base, "SKIL_HOME": str(WORK / "home-a"), **user_home(WORK / "user-a")}
    env_b = {
        **base,
        "SKIL_HOME": str(WORK / "home-b"),
        "SKIL_WHEELHOUSE": str(WORK / "wh-b"),
        **user_home(WORK / "user-b"),
    }

    python_start = statistics.median(
        run([sys.executable, "-c", "pass"], base)[0] for _ in range(args.repeat)
    )
    print("cold build (empty SKIL_HOME, empty wheelhouse: downloads)...", file=sys.stderr)
    cold_wall, cold = build(project, env_a)
    print("cold build in a second empty SKIL_HOME (its own empty wheelhouse)...", file=sys.stderr)
    cold2_wall, cold2 = build(project, env_b)
    env_c = {**base, "SKIL_HOME": str(WORK / "home-c"), "SKIL_WHEELHOUSE": str(WORK / "wh-b")}
    warm_wall, _ = build(project, env_c)

    noop_walls, noop_work = [], []
    for _ in range(args.repeat):
        wall, data = build(project, env_a)
        assert data["cached"], data
        noop_walls.append(wall)
        noop_work.append(data["seconds"])
    module = project / "bench_provider" / "provider.py"
    edit_walls, edit_work = [], []
    for index in range(args.repeat):
        module.write_text(PROVIDER + f"\n# edit {index}\n")
        wall, data = build(project, env_a)
        assert not data["cached"], data
        edit_walls.append(wall)
        edit_work.append(data["seconds"])

    manifest = json.loads((Path(cold["bundle"]).parent / "manifest.json").read_text())
    requirements = [f"{p['name']}=={p['version']}" for p in manifest["pins"]]
    sdk_wheel = next((WORK / "home-a" / "cache" / "wheels").glob("*/skil_sdk-*.whl"))
    plugin_wheel = next((WORK / "home-a" / "cache" / "wheels").glob("*/bench_provider-*.whl"))
    plain_cmd = [
        sys.executable, "-m", "pex", *requirements, str(sdk_wheel), str(plugin_wheel),
        "--inherit-path=fallback", "--pex-root", str(WORK / "pex-root"),
        "-o", str(WORK / "plain.pex"),
    ]
    for name in manifest["excludes"]:
        plain_cmd += ["--exclude", name]
    print("plain pex, same requirements, empty PEX_ROOT...", file=sys.stderr)
    plain_env = {**base, **user_home(WORK / "user-plain")}
    plain_wall, _ = run(plain_cmd, plain_env)
    print("plain pex again, warm PEX_ROOT...", file=sys.stderr)
    plain_warm_wall, _ = run(plain_cmd, plain_env)

    results = {
        "command": COMMAND,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "bundle_size_bytes": cold["size"],
        "repeat": args.repeat,
        "python_start_s": round(python_start, 3),
        "cold_build_s": round(cold_wall, 2),
        "cold_build_second_home_s": round(cold2_wall, 2),
        "cold_build_warm_wheelhouse_s": round(warm_wall, 2),
        "noop_rebuild_cli_wall_s": round(statistics.median(noop_walls), 3),
        "noop_rebuild_work_s": round(statistics.median(noop_work), 3),
        "noop_rebuild_beyond_python_start_s": round(
            statistics.median(noop_walls) - python_start, 3
        ),
        "edit_rebuild_cli_wall_s": round(statistics.median(edit_walls), 2),
        "edit_rebuild_work_s": round(statistics.median(edit_work), 2),
        "edit_rebuild_fraction_of_cold": round(statistics.median(edit_walls) / cold_wall, 3),
        "plain_pex_cold_s": round(plain_wall, 2),
        "plain_pex_warm_s": round(plain_warm_wall, 2),
        "byte_identical": cold["hash"] == cold2["hash"]
        and sha256(cold["bundle"]) == sha256(cold2["bundle"]),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    write_doc(results)
    print(json.dumps(results, indent=2))


def write_doc(r: dict[str, Any]) -> None:
    m = r["machine"]
    section = textwrap.dedent(
        f"""\
        ## Build

        `skil-sdk build` of a one-plugin bundle ({r['bundle_size_bytes'] / 1e6:.0f} MB: skil_sdk,
        onnxruntime, numpy, pyarrow, pandas and their dependencies). Measured with
        `{r['command']}` on {m['platform']}, Python {m['python']}, {m['cpus']} CPUs
        (1-minute load average {m['load_average_1m']} when it finished); medians of
        {r['repeat']} runs where repeated. Wall times are of the `skil-sdk` command;
        "work" is the time `build()` itself reports.

        {{table}}

        A cold build is mostly the download; after it, a bundle is assembled from the cached
        wheels with pex's `--pre-resolved-dists` and `--no-pre-install-wheels` in a second or
        two. An edit rebuilds one plugin wheel (its setuptools backend runs against a cached
        view of the installed build requirements: no fresh isolated environment, no scan of
        every installed distribution; a few tenths of a second) and has pex reassemble the
        bundle, which is most of the edit rebuild. A no-op rebuild is almost all interpreter
        and import start-up; the cache check itself is the "work" row.
        {{verdict}}
        """
    )
    rows = [
        ("Cold build: empty SKIL_HOME and wheelhouse (downloads)", f"{r['cold_build_s']} s",
         "≤ plain pex"),
        ("Cold build, empty SKIL_HOME, wheelhouse already filled",
         f"{r['cold_build_warm_wheelhouse_s']} s", ""),
        ("Plain `pex`, same requirements, empty PEX_ROOT", f"{r['plain_pex_cold_s']} s", ""),
        ("Plain `pex`, same requirements, warm PEX_ROOT", f"{r['plain_pex_warm_s']} s", ""),
        ("No-op rebuild, CLI wall", f"{r['noop_rebuild_cli_wall_s']} s", "≤ 1 s"),
        (f"No-op rebuild beyond interpreter start ({r['python_start_s']} s)",
         f"{r['noop_rebuild_beyond_python_start_s']} s", "≤ 0.5 s"),
        ("No-op rebuild, work reported by build()", f"{r['noop_rebuild_work_s']} s", ""),
        ("One plugin file edited, CLI wall", f"{r['edit_rebuild_cli_wall_s']} s", "≤ 3 s"),
        ("One plugin file edited, share of the cold build",
         f"{r['edit_rebuild_fraction_of_cold'] * 100:.1f} %", "≤ 15 %"),
        ("Two cold builds in two empty homes byte-identical",
         "yes" if r["byte_identical"] else "NO", "yes"),
    ]
    table = "\n".join(
        ["| Case | Result | Target |", "|---|---|---|"]
        + [f"| {case} | {value} | {goal} |" for case, value, goal in rows]
    )
    section = section.replace("{table}", table)
    verdict = ""
    if r["edit_rebuild_fraction_of_cold"] > 0.15:
        verdict = "\n" + textwrap.fill(
            "The edit rebuild misses the 15 % target here because the cold build is short: "
            "the index is fast on this machine, so the download that dominates a cold build "
            "takes seconds, while pex rewriting the whole bundle stays at one to two seconds.",
            width=88,
        ) + "\n"
    section = section.replace("{verdict}\n", verdict)
    replace_section(DOC, "Build", section)


if __name__ == "__main__":
    main()
