"""The node cache stays under SKIL_NODE_CACHE_MAX, evicting least recently used entries,
never one a live process holds (real processes and real flock)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skil_sdk.errors import InvalidValueError
from skil_sdk.spark import nodecache


def make_entry(path: Path, size: int, used: float) -> Path:
    path.mkdir(parents=True)
    (path / "blob").write_bytes(b"x" * size)
    (path / nodecache.USED_MARK).touch()
    os.utime(path / nodecache.USED_MARK, (used, used))
    return path


def start_holder(entry: Path) -> subprocess.Popen[str]:
    """Another process that holds ``entry`` (shared flock) for a minute."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from skil_sdk.spark import nodecache;"
            "nodecache.hold(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)",
            str(entry),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_parse_size() -> None:
    assert nodecache.parse_size("500m") == 500 * 1024**2
    assert nodecache.parse_size("2G") == 2 * 1024**3
    assert nodecache.parse_size("4096") == 4096
    with pytest.raises(InvalidValueError, match="20g"):
        nodecache.parse_size("lots")


def test_lru_eviction_skips_entries_a_live_process_holds(tmp_path: Path) -> None:
    now = time.time()
    oldest = make_entry(tmp_path / "models" / ("a" * 64), 4000, now - 300)
    middle = make_entry(tmp_path / "models" / ("b" * 64), 4000, now - 200)
    wheel = make_entry(
        tmp_path / "pex" / "installed_wheels" / "3" / ("f" * 64) / "dep-1.0-py3-none-any.whl",
        4000,
        now - 100,
    )
    newest = make_entry(tmp_path / "models" / ("c" * 64), 4000, now)
    holder = start_holder(oldest)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        removed = nodecache.evict(tmp_path, 9000)
        # the oldest is held, so the next two least recently used go
        assert removed == [middle, wheel]
        assert oldest.exists() and newest.exists()
    finally:
        holder.kill()
        holder.wait()
    # holding marked `oldest` as just used, so once its holder is gone `newest` is the LRU
    assert nodecache.evict(tmp_path, 5000) == [newest]
    assert oldest.exists()
    assert not any(".evicted" in p.name for p in (tmp_path / "models").iterdir())


def test_enforce_only_with_a_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_entry(tmp_path / "models" / ("d" * 64), 3000, time.time())
    monkeypatch.delenv("SKIL_NODE_CACHE_MAX", raising=False)
    assert nodecache.enforce(tmp_path) == []
    monkeypatch.setenv("SKIL_NODE_CACHE_MAX", "1k")
    assert nodecache.enforce(tmp_path) == [tmp_path / "models" / ("d" * 64)]


def make_venv(pex_root: Path, name: str, wheels: list[Path], used: float) -> Path:
    """A venv laid out as pex lays one out: site-packages links into unpacked wheels, and a
    short-path folder ``venvs/<v>/s/<id>/venv`` linking to it."""
    venv = pex_root / "venvs" / "4" / (name * 40) / (name * 40)
    site_packages = venv / "lib" / "python3.11" / "site-packages"
    site_packages.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    for wheel in wheels:
        package = wheel / "pkg"
        package.mkdir(exist_ok=True)
        (site_packages / f"pkg_{wheel.parent.name[:6]}").symlink_to(package)
    short = pex_root / "venvs" / "4" / "s" / name
    short.mkdir(parents=True)
    (short / "venv").symlink_to(venv)
    (venv / nodecache.USED_MARK).touch()
    os.utime(venv / nodecache.USED_MARK, (used, used))
    return venv


def test_a_wheel_goes_with_the_venvs_that_link_to_it(tmp_path: Path) -> None:
    now = time.time()
    pex_root = tmp_path / "pex"
    wheels = pex_root / "installed_wheels" / "3"
    shared = make_entry(wheels / ("1" * 64) / "shared-1.0-py3-none-any.whl", 6000, now - 500)
    own = make_entry(wheels / ("2" * 64) / "own-1.0-py3-none-any.whl", 6000, now - 10)
    old_venv = make_venv(pex_root, "a", [shared], now - 400)
    new_venv = make_venv(pex_root, "b", [shared, own], now - 5)
    assert set(nodecache.venv_dirs(pex_root)) == {old_venv, new_venv}

    holder = start_holder(new_venv)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        # `shared` is the least recently used, but a held venv links to it: it stays, and
        # so does everything that venv uses; the unheld old venv alone can go.
        assert nodecache.evict(tmp_path, 0) == [old_venv]
        assert shared.exists() and own.exists() and new_venv.exists()
    finally:
        holder.kill()
        holder.wait()
    removed = nodecache.evict(tmp_path, 0)
    assert removed[:2] == [new_venv, shared], "a wheel never outlives a venv linking to it"
    assert own in removed
    assert not (pex_root / "venvs" / "4" / "s" / "b").exists(), "the short link goes too"
    assert nodecache.entries(tmp_path) == []
