"""The build cache's helpers: the tools' TMPDIR and the bundle a new one is compared with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from skil_sdk.builder import cache


def test_tools_get_their_own_tmpdir_under_the_cache(skil_home: Path) -> None:
    code = (
        "import os, tempfile; tmp = tempfile.gettempdir(); print(tmp); "
        "open(os.path.join(tmp, 'left'), 'w').close()"
    )
    with cache.tool_env({"PATH": os.environ.get("PATH", ""), "KEEP": "1"}) as env:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True)
        seen = Path(done.stdout.strip())
        assert (seen / "left").is_file()
    assert env["KEEP"] == "1" and env["TMPDIR"] == env["TEMP"] == env["TMP"] == str(seen)
    assert seen.parent == skil_home.resolve() / "cache" / "tmp"
    assert not seen.exists()
    assert list(seen.parent.iterdir()) == []


def test_a_killed_builds_scratch_folder_is_swept(skil_home: Path) -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    leftover = cache.cache_root() / "tmp" / f".tool-{int(child.stdout)}-{'0' * 32}.work"
    leftover.mkdir(parents=True)
    with cache.scratch("wheel") as scratch:
        assert [p.name for p in scratch.parent.iterdir()] == [scratch.name]
    assert not leftover.exists()


def _fake_bundle(digest: str, inputs: dict[str, Any], used: int) -> None:
    entry = cache.bundles_dir() / digest
    entry.mkdir()
    (entry / "b.pex").write_bytes(b"pex")
    manifest = entry / "manifest.json"
    manifest.write_text(json.dumps({"hash": digest, "bundle": "b.pex", "inputs": inputs}))
    os.utime(manifest, (used, used))


def test_the_closest_bundle_shares_the_target_and_most_plugins(skil_home: Path) -> None:
    def inputs(target: str, *plugins: str) -> dict[str, Any]:
        return {"target": target, "plugins": [[name, "1.0", "sha"] for name in plugins]}

    assert cache.closest_bundle(inputs("host", "a")) is None
    _fake_bundle("1" * 64, inputs("host", "a", "b"), used=1_000)
    _fake_bundle("2" * 64, inputs("host", "a"), used=2_000)
    _fake_bundle("3" * 64, inputs("other", "a", "b"), used=3_000)
    _fake_bundle("4" * 64, {**inputs("host", "a", "b"), "onnxruntime": "gpu"}, used=4_000)
    closest = cache.closest_bundle(inputs("host", "a", "b"))
    assert closest is not None and closest.hash == "1" * 64
    latest = cache.closest_bundle(inputs("host", "c"))
    assert latest is not None and latest.hash == "2" * 64
    assert cache.closest_bundle(inputs("elsewhere", "a")) is None


def test_pex_leftovers_older_than_an_hour_are_swept_and_nothing_else(tmp_path: Path) -> None:
    import time

    from _tmpdirs import old_pex_leftover

    from skil_sdk.builder.cache import sweep_pex_leftovers

    two_hours_ago = time.time() - 7200
    old = old_pex_leftover(tmp_path, "abcd1234.numpy-2.4.6-cp311-cp311-linux_x86_64.whl", 1000)
    fresh = tmp_path / "pex-whl-install.efgh5678.pyarrow-26.0.1-cp311-linux_x86_64.whl"
    fresh.mkdir()  # an unpacking under way
    other = tmp_path / "pip-build-abc"
    other.mkdir()
    a_file = tmp_path / "pex-whl-install.notes"
    a_file.write_text("not a folder")
    for path in (other, a_file):
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert sweep_pex_leftovers(tmp_path) == (1, 1000)
    assert not old.exists() and fresh.is_dir() and other.is_dir() and a_file.is_file()
    assert sweep_pex_leftovers(tmp_path / "missing") == (0, 0)
