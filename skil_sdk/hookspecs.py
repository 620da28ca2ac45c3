"""The plugin hooks of skil-sdk.

A plugin is a module named by a setuptools entry point in the group ``skil_sdk``;
the entry point's name is the plugin's name. It implements one or more hooks::

    import skil_sdk

    @skil_sdk.hookimpl
    def register_providers(register):
        register(MyProvider)

Built-in features are registered through the same hooks (``skil_sdk.providers.builtin``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "skil_sdk"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_providers(register: Callable[[type[Any]], None]) -> None:
    """Register keyed data-set providers: call ``register(ProviderClass)`` for each.

    Each class subclasses :class:`skil_sdk.KeyedDataSetProvider` and has a unique
    ``PLUGIN_NAME``.
    """


@hookspec
def register_postprocessors(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register output post-processors: call ``register(name, function)`` for each.

    ``function(outputs: dict[str, numpy.ndarray], **options) -> dict[str, numpy.ndarray]``
    maps a batch of model outputs to the columns written instead
    (``skil-sdk infer --postprocess NAME``).
    """
