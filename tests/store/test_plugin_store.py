"""The plugin store: immutable versions, sha256, providers required, list/show/remove."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _bundle_fixtures import write_wheel
from click.testing import CliRunner

from skil_sdk.cli.main import main
from skil_sdk.errors import ConflictError, InvalidValueError, NotFoundError
from skil_sdk.storage import sha256_file
from skil_sdk.store.plugins import (
    current_plugins,
    get_plugin,
    list_plugins,
    plugins_dir,
    publish_wheel,
    remove_plugin,
)


def test_publish_twice_with_the_same_bytes_is_a_no_op(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path)
    first = publish_wheel(wheel)
    second = publish_wheel(wheel)
    assert first.published and not second.published
    assert second.plugin.sha256 == first.plugin.sha256 == sha256_file(wheel)
    assert [(p.name, p.version) for p in list_plugins()] == [("hand-made", "1.0")]


def test_same_version_with_other_bytes_is_refused(tmp_path: Path) -> None:
    publish_wheel(write_wheel(tmp_path / "a", payload="VALUE = 1\n"))
    with pytest.raises(ConflictError, match="bump the version"):
        publish_wheel(write_wheel(tmp_path / "b", payload="VALUE = 2\n"))
    stored = get_plugin("hand-made")
    assert stored.sha256 == sha256_file(tmp_path / "a" / stored.filename)


def test_wheel_without_a_provider_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="registers no provider"):
        publish_wheel(write_wheel(tmp_path, entry_points={}))
    assert list_plugins() == []


def test_name_and_version_come_from_metadata(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path, name="Odd_Name", version="2.0")
    renamed = wheel.rename(tmp_path / "whatever-9.9-py3-none-any.whl")
    result = publish_wheel(renamed)
    assert (result.plugin.name, result.plugin.version) == ("Odd_Name", "2.0")
    assert get_plugin("odd-name").version == "2.0"


def test_versions_latest_and_remove(tmp_path: Path) -> None:
    for version in ("1.0", "1.10", "1.2"):
        publish_wheel(write_wheel(tmp_path / version, version=version))
    assert [p.version for p in list_plugins()] == ["1.0", "1.2", "1.10"]
    assert [p.version for p in current_plugins()] == ["1.10"]
    assert get_plugin("hand-made").version == "1.10"
    assert get_plugin("hand", "1.2").version == "1.2"  # by provider entry-point name
    removed = remove_plugin("hand-made", "1.10")
    assert [p.version for p in removed] == ["1.10"]
    assert get_plugin("hand-made").version == "1.2"
    remove_plugin("hand-made")
    assert list_plugins() == []
    with pytest.raises(NotFoundError, match="skil-sdk publish"):
        get_plugin("hand-made")


def test_cli_publish_list_show_remove(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path)
    runner = CliRunner()
    published = runner.invoke(main, ["publish", str(wheel), "--json"])
    assert published.exit_code == 0, published.output
    assert json.loads(published.output)["published"] is True
    again = runner.invoke(main, ["publish", str(wheel), "--json"])
    assert json.loads(again.output)["published"] is False
    listed = json.loads(runner.invoke(main, ["plugins", "list", "--json"]).output)
    assert [p["name"] for p in listed] == ["hand-made"]
    shown = json.loads(runner.invoke(main, ["plugins", "show", "hand-made", "--json"]).output)
    assert shown["entry_points"] == {"hand": "hand_made.provider"}
    other = write_wheel(tmp_path / "other", payload="VALUE = 3\n")
    refused = runner.invoke(main, ["publish", str(other)])
    assert refused.exit_code == 1
    assert "bump the version" in refused.output
    removed = runner.invoke(main, ["plugins", "remove", "hand-made==1.0", "--json"])
    assert removed.exit_code == 0
    assert json.loads(removed.output)["removed"][0]["version"] == "1.0"
    missing = runner.invoke(main, ["plugins", "show", "hand-made"])
    assert missing.exit_code == 1


def test_cli_names_a_plugin_by_name_version_or_provider(tmp_path: Path) -> None:
    runner = CliRunner()
    for version in ("1.0", "1.1"):
        publish_wheel(write_wheel(tmp_path / version, version=version))

    def show(spec: str) -> Any:
        return json.loads(runner.invoke(main, ["plugins", "show", spec, "--json"]).stdout)

    assert show("Hand_Made==1.0")["version"] == "1.0"
    assert show("hand-made")["version"] == "1.1"
    assert show("hand")["name"] == "hand-made"  # its provider's name
    refused = runner.invoke(main, ["plugins", "show", "hand-made>=1.0"])
    assert refused.exit_code == 1 and "is not NAME or NAME==VERSION" in refused.output


def test_store_leaves_no_work_directories(tmp_path: Path) -> None:
    publish_wheel(write_wheel(tmp_path))
    leftovers = [p for p in plugins_dir().rglob("*") if p.name.endswith(".work")]
    assert leftovers == []


def test_publish_to_an_unreachable_server_names_the_fix(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path)
    result = CliRunner().invoke(main, ["publish", str(wheel), "--server", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "Cannot reach the server" in result.output and "--server" in result.output
    assert list_plugins() == []
