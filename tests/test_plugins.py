"""The plugin system: entry-point discovery, SKIL_LOAD_PLUGINS, clashes, import paths.

Third-party plugins here are real distributions: a module and a hand-written
``*.dist-info`` (METADATA, entry_points.txt, top_level.txt) in a directory put on
``sys.path``, found by ``importlib.metadata`` exactly as an installed wheel is.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from skil_sdk import __version__
from skil_sdk.cli import main
from skil_sdk.errors import NotFoundError, PluginError
from skil_sdk.plugins import get_provider, list_providers, load_plugins, reset_plugins

BUILTIN_PROVIDERS = {"mnist", "parquet", "csv", "numpy", "images"}

PROVIDER_MODULE = '''
import skil_sdk
from skil_sdk import KeyedDataSetProvider, ProviderOption


class {cls}(KeyedDataSetProvider):
    """{cls} rows for the plugin tests."""

    PLUGIN_NAME = "{name}"
    OPTIONS = (ProviderOption("n", "how many rows", default="3"),)

    def data(self, spark, **options):
        return spark.range(int(options.get("n", 3)))


@skil_sdk.hookimpl
def register_providers(register):
    register({cls})
'''


class Site:
    """A directory on ``sys.path`` that holds throwaway distributions."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(
        self,
        dist: str,
        version: str,
        modules: dict[str, str],
        entry_points: dict[str, str] | None = None,
    ) -> None:
        """Install ``dist``: its modules and a dist-info with its ``skil_sdk`` entry points."""
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(source, encoding="utf-8")
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "top_level.txt").write_text("".join(f"{m}\n" for m in modules), encoding="utf-8")
        if entry_points:
            lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
            (info / "entry_points.txt").write_text(f"[skil_sdk]\n{lines}", encoding="utf-8")

    def provider(self, dist: str, version: str, module: str, cls: str, name: str) -> None:
        """Install ``dist`` with one provider ``cls`` named ``name``, as plugin ``dist``."""
        source = PROVIDER_MODULE.format(cls=cls, name=name)
        self.add(dist, version, {module: source}, {dist: module})


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A fresh site directory; its modules are forgotten afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield Site(root)
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(root)):
            del sys.modules[name]
    reset_plugins()


def provider_names() -> set[str]:
    return {info.name for info in list_providers()}


def cli_providers() -> list[dict[str, object]]:
    result = CliRunner().invoke(main, ["providers", "list", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    listed: list[dict[str, object]] = json.loads(result.stdout)
    return listed


def test_builtins_are_listed_as_the_builtin_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIL_LOAD_PLUGINS", "")
    builtins = {info.name: info for info in list_providers()}
    assert set(builtins) == BUILTIN_PROVIDERS
    for info in builtins.values():
        assert (info.plugin, info.package, info.version) == ("builtin", "skil-sdk", __version__)
        assert info.class_path.startswith("skil_sdk.providers.")
    assert {o.name for o in builtins["csv"].options} >= {"path"}
    listed = {entry["name"]: entry for entry in cli_providers()}
    assert set(listed) == BUILTIN_PROVIDERS
    assert listed["csv"]["package"] == "skil-sdk"
    assert listed["csv"]["version"] == __version__
    assert listed["csv"]["class"] == builtins["csv"].class_path


def test_third_party_plugin_is_found_by_its_entry_point(site: Site) -> None:
    site.provider("acme-rows", "1.2.3", "acme_rows_plugin", "AcmeRows", "acme-rows")
    info = get_provider("acme-rows")
    assert info.plugin == "acme-rows"
    assert (info.package, info.version) == ("acme-rows", "1.2.3")
    assert info.class_path == "acme_rows_plugin:AcmeRows"
    assert [o.name for o in info.options] == ["n"]
    listed = {entry["name"]: entry for entry in cli_providers()}
    assert listed["acme-rows"]["package"] == "acme-rows"
    assert listed["acme-rows"]["version"] == "1.2.3"
    assert listed["acme-rows"]["class"] == "acme_rows_plugin:AcmeRows"
    assert listed["acme-rows"]["description"] == "AcmeRows rows for the plugin tests."
    assert set(listed) >= BUILTIN_PROVIDERS


def test_plugins_load_once(site: Site) -> None:
    first = load_plugins()
    site.provider("acme-late", "1.0", "acme_late_plugin", "Late", "late")
    assert load_plugins() is first
    assert "late" not in provider_names()
    reset_plugins()
    assert "late" in provider_names()


def test_skil_load_plugins_limits_third_party_plugins(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.provider("alpha", "1.0", "alpha_plugin", "Alpha", "alpha-rows")
    site.provider("beta", "1.0", "beta_plugin", "Beta", "beta-rows")
    assert {"alpha-rows", "beta-rows"} <= provider_names()

    monkeypatch.setenv("SKIL_LOAD_PLUGINS", "alpha")
    reset_plugins()
    assert provider_names() == BUILTIN_PROVIDERS | {"alpha-rows"}
    assert "beta" not in load_plugins().plugins

    monkeypatch.setenv("SKIL_LOAD_PLUGINS", " beta , alpha ")
    reset_plugins()
    assert provider_names() == BUILTIN_PROVIDERS | {"alpha-rows", "beta-rows"}

    monkeypatch.setenv("SKIL_LOAD_PLUGINS", "")
    reset_plugins()
    assert provider_names() == BUILTIN_PROVIDERS
    assert set(load_plugins().plugins) == {"builtin"}
    assert {entry["name"] for entry in cli_providers()} == BUILTIN_PROVIDERS


def test_broken_plugin_is_named_and_can_be_left_out(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = {"acme_broken_plugin": "import no_such_module\n"}
    site.add("acme-broken", "0.1", broken, {"acme-broken": "acme_broken_plugin"})
    site.provider("alpha", "1.0", "alpha_plugin", "Alpha", "alpha-rows")
    with pytest.raises(PluginError, match=r"'acme-broken'.*SKIL_LOAD_PLUGINS"):
        load_plugins()
    result = CliRunner().invoke(main, ["providers", "list"])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "acme-broken" in result.stderr

    monkeypatch.setenv("SKIL_LOAD_PLUGINS", "alpha")
    reset_plugins()
    assert provider_names() == BUILTIN_PROVIDERS | {"alpha-rows"}


def test_duplicate_provider_name_names_both_classes_and_packages(site: Site) -> None:
    site.provider("acme-one", "1.0", "acme_one_plugin", "OneRows", "rows")
    site.provider("acme-two", "2.0", "acme_two_plugin", "TwoRows", "rows")
    with pytest.raises(PluginError) as caught:
        load_plugins()
    message = caught.value.message
    for part in ("'rows'", "acme_one_plugin:OneRows", "acme_two_plugin:TwoRows"):
        assert part in message
    assert "acme-one 1.0" in message and "acme-two 2.0" in message

    result = CliRunner().invoke(main, ["providers", "list"])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "OneRows" in line and "TwoRows" in line


def test_duplicate_of_a_builtin_name_is_an_error(site: Site) -> None:
    site.provider("acme-csv", "0.3", "acme_csv_plugin", "MyCsv", "csv")
    with pytest.raises(PluginError) as caught:
        load_plugins()
    message = caught.value.message
    assert "skil_sdk.providers.files:CsvProvider" in message and "skil-sdk" in message
    assert "acme_csv_plugin:MyCsv" in message and "acme-csv 0.3" in message


def test_a_plugin_must_register_named_provider_classes(site: Site) -> None:
    source = (
        "import skil_sdk\n\n\n@skil_sdk.hookimpl\n"
        "def register_providers(register):\n    register(dict)\n"
    )
    site.add("acme-odd", "1.0", {"acme_odd_plugin": source}, {"acme-odd": "acme_odd_plugin"})
    with pytest.raises(PluginError, match=r"not a subclass of skil_sdk\.KeyedDataSetProvider"):
        load_plugins()


def test_a_provider_needs_a_plugin_name(site: Site) -> None:
    site.provider("acme-anon", "1.0", "acme_anon_plugin", "Anonymous", "")
    with pytest.raises(PluginError, match="has no PLUGIN_NAME"):
        load_plugins()


def test_provider_by_import_path(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIL_LOAD_PLUGINS", "")
    source = PROVIDER_MODULE.format(cls="PathRows", name="path-rows")
    site.add(
        "acme-paths",
        "4.5.6",
        {"acme_paths_mod": source + "\n\nclass Outer:\n    Inner = PathRows\n"},
    )
    assert "path-rows" not in provider_names()
    info = get_provider("acme_paths_mod:PathRows")
    assert info.cls.__name__ == "PathRows"
    assert info.name == "path-rows"
    assert (info.package, info.version) == ("acme-paths", "4.5.6")
    assert info.class_path == "acme_paths_mod:PathRows"
    assert get_provider("acme_paths_mod:Outer.Inner").cls is info.cls


def test_bad_import_paths_and_unknown_names(site: Site) -> None:
    site.add("acme-paths", "1.0", {"acme_paths_mod2": "class NotAProvider:\n    pass\n"})
    with pytest.raises(NotFoundError, match="cannot be imported"):
        get_provider("acme_no_such_module:Rows")
    with pytest.raises(NotFoundError, match="cannot be imported"):
        get_provider("acme_paths_mod2:Missing")
    with pytest.raises(PluginError, match="not a subclass"):
        get_provider("acme_paths_mod2:NotAProvider")
    with pytest.raises(NotFoundError, match="--plugin") as caught:
        get_provider("no-such-provider")
    assert "csv" in caught.value.message and "did you mean" not in caught.value.message
    with pytest.raises(NotFoundError) as caught:
        get_provider("parqet")
    assert "(did you mean 'parquet'?)" in caught.value.message


def test_two_packages_with_one_entry_point_name_is_an_error(site: Site) -> None:
    """The template names the entry point after the provider: a clash there must not hide one."""
    one = PROVIDER_MODULE.format(cls="OneRows", name="rows")
    two = PROVIDER_MODULE.format(cls="TwoRows", name="rows")
    site.add("acme-one", "1.0", {"acme_one_plugin": one}, {"rows": "acme_one_plugin"})
    site.add("acme-two", "2.0", {"acme_two_plugin": two}, {"rows": "acme_two_plugin"})
    with pytest.raises(PluginError) as caught:
        load_plugins()
    message = caught.value.message
    assert "'rows'" in message and "acme-one" in message and "acme-two" in message
    assert "acme_one_plugin" in message and "acme_two_plugin" in message
