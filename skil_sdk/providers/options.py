"""Provider options checked against what a provider declares (its ``OPTIONS``).

:func:`resolve_options` runs when a job is prepared, on the submitting machine and
before Spark starts: an unknown option, a missing required one or a value of the
wrong type is one sentence naming the option; declared defaults are filled in, so
``data()`` receives every declared option that has a value.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from skil_sdk.errors import InvalidValueError
from skil_sdk.providers.interface import ProviderOption
from skil_sdk.uris import is_local, local_path

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_WILDCARDS = ("*", "?", "[", "{")


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve_options(
    provider: str,
    declared: Sequence[ProviderOption],
    given: Mapping[str, str],
    check_paths: bool = True,
) -> dict[str, str]:
    """``given`` checked against ``declared``, with defaults filled in.

    A provider that declares no options takes any, unchecked. ``check_paths`` (local
    masters) makes a ``path`` option name something that exists on this machine; on a
    cluster a path without a scheme may name the cluster's default file system.
    """
    options = {str(k): str(v) for k, v in given.items()}
    if not declared:
        return options
    by_name = {o.name: o for o in declared}
    for key in options:
        if key not in by_name:
            raise InvalidValueError(
                f"The {provider} provider has no option {key!r}{did_you_mean(key, list(by_name))}"
                f"; it takes: {', '.join(sorted(by_name))}."
            )
    resolved: dict[str, str] = {}
    for option in declared:
        if option.name in options:
            value = options[option.name]
            resolved[option.name] = check_value(provider, option, value, check_paths)
        elif option.required:
            raise InvalidValueError(
                f"The {provider} provider needs the option {option.name!r}, {option.help}; "
                f"pass --provider-option {option.name}={_placeholder(option)}."
            )
        elif option.default is not None:
            resolved[option.name] = option.default
    return resolved


def check_value(
    provider: str, option: ProviderOption, value: str, check_paths: bool = True
) -> str:
    """``value`` checked against ``option``'s type; booleans become ``true``/``false``."""
    where = f"The {provider} provider's option {option.name!r}"
    text = value.strip()
    if option.type == "string":
        if option.required and not text:
            raise InvalidValueError(f"{where} is empty; give it a value ({option.help}).")
        return value
    if option.type in ("int", "float"):
        number = _number(where, option, text)
        if option.minimum is not None and number < option.minimum:
            low = int(option.minimum) if option.type == "int" else option.minimum
            raise InvalidValueError(f"{where} must be at least {low}, not {text}.")
        return text
    if option.type == "bool":
        lowered = text.lower()
        if lowered in _TRUE:
            return "true"
        if lowered in _FALSE:
            return "false"
        raise InvalidValueError(f"{where} must be true or false, not {value!r}.")
    if option.type == "choice":
        if text not in option.choices:
            raise InvalidValueError(
                f"{where} must be one of {', '.join(option.choices)}, not {value!r}"
                f"{did_you_mean(text, option.choices)}."
            )
        return text
    return _check_path(where, option, text, check_paths)


def _number(where: str, option: ProviderOption, text: str) -> float:
    try:
        return int(text) if option.type == "int" else float(text)
    except ValueError:
        kind = "a whole number" if option.type == "int" else "a number"
        example = option.default or ("1000" if option.type == "int" else "0.5")
        raise InvalidValueError(f"{where} must be {kind}, not {text!r}; e.g. {example}.") from None


def _check_path(where: str, option: ProviderOption, text: str, check_paths: bool) -> str:
    if not text:
        raise InvalidValueError(f"{where} is empty; give it a path ({option.help}).")
    local = (
        (check_paths or text.startswith("file://"))
        and is_local(text)
        and not any(w in text for w in _WILDCARDS)
    )
    if local and not local_path(text).exists():
        raise InvalidValueError(
            f"{where} names {text}, which does not exist on this machine; check the path "
            "(remote data takes a URI such as s3://bucket/key)."
        )
    return text


def _placeholder(option: ProviderOption) -> str:
    return {"path": "PATH", "int": "N", "float": "X", "bool": "true"}.get(
        option.type, option.choices[0] if option.choices else "VALUE"
    )
