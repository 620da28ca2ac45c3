"""The plugin manager: loads plugins once, on first use, and indexes what they register.

Third-party plugins are setuptools entry points in the group ``skil_sdk``, loaded with
pluggy's ``load_setuptools_entrypoints``. ``SKIL_LOAD_PLUGINS`` (comma-separated plugin
names; set but empty means none) limits which of them load. Built-in providers and
post-processors are registered through the same hooks, as the plugin ``builtin``.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from skil_sdk import hookspecs
from skil_sdk.errors import NotFoundError, PluginError
from skil_sdk.providers.interface import KeyedDataSetProvider, ProviderOption

ENTRY_POINT_GROUP = "skil_sdk"
BUILTIN_PLUGIN = "builtin"


@dataclass(frozen=True)
class ProviderInfo:
    """A registered provider and where it comes from."""

    name: str
    cls: type[KeyedDataSetProvider]
    plugin: str
    package: str
    version: str

    @property
    def class_path(self) -> str:
        """The provider's import path, ``package.module:Class``."""
        return f"{self.cls.__module__}:{self.cls.__qualname__}"

    @property
    def options(self) -> tuple[ProviderOption, ...]:
        """The options the provider declares."""
        return tuple(self.cls.OPTIONS)

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by ``skil-sdk providers list --json``."""
        return {
            "name": self.name,
            "plugin": self.plugin,
            "package": self.package,
            "version": self.version,
            "class": self.class_path,
            "description": self.cls.describe(),
            "options": [o.to_dict() for o in self.options],
        }


@dataclass
class Registry:
    """Everything the loaded plugins registered."""

    providers: dict[str, ProviderInfo] = field(default_factory=dict)
    postprocessors: dict[str, Callable[..., Any]] = field(default_factory=dict)
    plugins: dict[str, tuple[str, str]] = field(default_factory=dict)


_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None
_registry: Registry | None = None


def _allowed_plugin_names() -> set[str] | None:
    raw = os.environ.get("SKIL_LOAD_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _make_manager() -> pluggy.PluginManager:
    from skil_sdk.providers import builtin

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name=BUILTIN_PLUGIN)
    allowed = _allowed_plugin_names()
    _refuse_clashing_names(metadata.entry_points(group=ENTRY_POINT_GROUP), allowed)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)
        except Exception as exc:
            raise PluginError(
                f"Plugin {ep.name!r} ({ep.value}) failed to load: {exc}; reinstall it, or "
                f"leave it out with SKIL_LOAD_PLUGINS."
            ) from exc
    return pm


def _refuse_clashing_names(
    entry_points: metadata.EntryPoints, allowed: set[str] | None
) -> None:
    """Two distributions declaring one plugin name is an error (pluggy would drop one)."""
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in entry_points:
        if allowed is not None and ep.name not in allowed:
            continue
        first = seen.setdefault(ep.name, ep)
        first_dist = first.dist.name if first.dist else "?"
        this_dist = ep.dist.name if ep.dist else "?"
        if first is not ep and first_dist != this_dist:
            raise PluginError(
                f"Two plugins are named {ep.name!r}: {first.value} (package {first_dist}) and "
                f"{ep.value} (package {this_dist}); uninstall one, or rename its entry point."
            )


def _distribution_of(pm: pluggy.PluginManager, plugin_name: str) -> tuple[str, str]:
    if plugin_name == BUILTIN_PLUGIN:
        from skil_sdk import __version__

        return "skil-sdk", __version__
    plugin = pm.get_plugin(plugin_name)
    for candidate, dist in pm.list_plugin_distinfo():
        if candidate is plugin:
            return dist.metadata["Name"], dist.version
    return "unknown", "unknown"


def _collect(pm: pluggy.PluginManager) -> Registry:
    """Call every plugin's hook implementations, remembering which plugin gave what."""
    registry = Registry()
    for plugin in pm.get_plugins():
        plugin_name = pm.get_name(plugin) or repr(plugin)
        registry.plugins[plugin_name] = _distribution_of(pm, plugin_name)
    for impl in reversed(pm.hook.register_providers.get_hookimpls()):
        package, version = registry.plugins[impl.plugin_name]
        found: list[type[Any]] = []
        impl.function(register=found.append)
        for cls in found:
            _add_provider(registry, _provider_info(cls, impl.plugin_name, package, version))
    for impl in reversed(pm.hook.register_postprocessors.get_hookimpls()):

        def add(name: str, fn: Callable[..., Any], _plugin: str = impl.plugin_name) -> None:
            if name in registry.postprocessors:
                raise PluginError(
                    f"Two post-processors are named {name!r} (one from plugin {_plugin!r}); "
                    "rename one of them."
                )
            registry.postprocessors[name] = fn

        impl.function(register=add)
    return registry


def _provider_info(cls: Any, plugin: str, package: str, version: str) -> ProviderInfo:
    if not (isinstance(cls, type) and issubclass(cls, KeyedDataSetProvider)):
        raise PluginError(
            f"Plugin {plugin!r} registered {cls!r}, which is not a subclass of "
            "skil_sdk.KeyedDataSetProvider; register provider classes only."
        )
    if not cls.PLUGIN_NAME:
        raise PluginError(
            f"Provider {cls.__module__}:{cls.__qualname__} from plugin {plugin!r} has no "
            "PLUGIN_NAME; set one."
        )
    return ProviderInfo(cls.PLUGIN_NAME, cls, plugin, package, version)


def _add_provider(registry: Registry, info: ProviderInfo) -> None:
    existing = registry.providers.get(info.name)
    if existing is not None and existing.cls is not info.cls:
        raise PluginError(
            f"Two providers are named {info.name!r}: {existing.class_path} "
            f"(package {existing.package} {existing.version}) and {info.class_path} "
            f"(package {info.package} {info.version}); uninstall one, rename one, or "
            "leave one out with SKIL_LOAD_PLUGINS."
        )
    registry.providers[info.name] = info


def load_plugins() -> Registry:
    """Load the plugins (once per process) and return what they registered."""
    global _manager, _registry
    with _lock:
        if _registry is None:
            _manager = _make_manager()
            _registry = _collect(_manager)
        return _registry


def reset_plugins() -> None:
    """Forget the loaded plugins so the next use loads them again (after an install)."""
    global _manager, _registry
    with _lock:
        _manager = None
        _registry = None


def list_providers() -> list[ProviderInfo]:
    """Every registered provider, sorted by name."""
    return sorted(load_plugins().providers.values(), key=lambda info: info.name)


def get_provider(name: str) -> ProviderInfo:
    """The provider registered as ``name``, or named by import path ``module:Class``."""
    registry = load_plugins()
    if name in registry.providers:
        return registry.providers[name]
    if ":" in name:
        return _provider_from_path(name)
    from skil_sdk.providers.options import did_you_mean

    known = ", ".join(sorted(registry.providers)) or "none"
    raise NotFoundError(
        f"No provider named {name!r}{did_you_mean(name, list(registry.providers))} "
        f"(available: {known}); install and publish the plugin that provides it, or pass "
        "its project with --plugin."
    )


def _provider_from_path(path: str) -> ProviderInfo:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = module
        for part in attr.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError) as exc:
        raise NotFoundError(
            f"Provider class {path!r} cannot be imported ({exc}); check the module path "
            "and that its package is installed."
        ) from exc
    package, version = "unknown", "unknown"
    top = module_name.split(".")[0]
    dists = metadata.packages_distributions().get(top)
    if dists:
        package = dists[0]
        version = metadata.version(package)
    info = _provider_info(cls, path, package, version)
    return info


def get_postprocessor(name: str) -> Callable[..., Any]:
    """The post-processor registered as ``name``."""
    registry = load_plugins()
    try:
        return registry.postprocessors[name]
    except KeyError:
        known = ", ".join(sorted(registry.postprocessors)) or "none"
        raise NotFoundError(f"No post-processor named {name!r} (available: {known}).") from None
