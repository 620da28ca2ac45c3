"""Scaffolding: render skil-sdk's cookiecutter templates (``skil-sdk new``).

The templates ship inside the package as ``skil_sdk.templates`` (``templates/`` in the
source tree), so an installed wheel can scaffold without the source. Names are checked
before anything is written, and a project is rendered in a staging directory beside
its target and moved into place, so a failure never leaves half a project behind.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from packaging.utils import canonicalize_name

from skil_sdk.errors import ConflictError, InvalidValueError, SkilError

TEMPLATES_PACKAGE = "skil_sdk.templates"
PROVIDER_TEMPLATE = "provider"
DEFAULT_DESCRIPTION = "Keyed rows from a JSON-lines or CSV file: an id and numeric features."
#: The provider template's variants (its ``provider_kind`` choice): ``data()`` returns a
#: Spark DataFrame, or an ExecutorSource that the executors (or the local engine) read.
DATAFRAME = "dataframe"
EXECUTOR_READ = "executor-read"
EXAMPLE_NAME = "acme-rows"

# PEP 508 names: ASCII letters and digits, with ".", "_" and "-" inside.
_DISTRIBUTION_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
# Module names a plugin must not take: they would shadow what it needs to import.
_RESERVED_MODULES = frozenset({"skil_sdk", "pyspark", "py4j", "pytest", "pluggy", "tests"})


@dataclass(frozen=True)
class ProviderNames:
    """The names a provider project is made of, all derived from the one name given."""

    #: Distribution name, entry point name, ``PLUGIN_NAME`` and directory name.
    name: str
    #: The Python package, e.g. ``acme_rows`` for ``acme-rows``.
    module: str
    #: The provider class, e.g. ``AcmeRowsProvider``.
    class_name: str


def provider_names(name: str) -> ProviderNames:
    """Check ``name`` and derive the module and class names from it.

    ``name`` must be a valid distribution name (PEP 508) whose normalized form, with
    ``-`` as ``_``, is a Python module name that shadows nothing the plugin imports.
    """
    hint = f"use lowercase letters, digits and dashes, such as {EXAMPLE_NAME!r}"
    if not _DISTRIBUTION_NAME.match(name):
        raise InvalidValueError(
            f"{name!r} is not a valid package name (letters, digits, '.', '_' and '-', "
            f"starting and ending with a letter or digit); {hint}."
        )
    module = canonicalize_name(name).replace("-", "_")
    if not module.isidentifier() or module[0].isdigit():
        raise InvalidValueError(
            f"{name!r} gives the module name {module!r}, which is not a Python identifier "
            f"(it starts with a digit); {hint}."
        )
    if keyword.iskeyword(module):
        raise InvalidValueError(
            f"{name!r} gives the module name {module!r}, which is a Python keyword; {hint}."
        )
    if module in sys.stdlib_module_names or module in _RESERVED_MODULES:
        raise InvalidValueError(
            f"{name!r} gives the module name {module!r}, which would shadow the module of "
            f"that name; {hint}."
        )
    camel = "".join(part.capitalize() for part in module.split("_"))
    class_name = camel if camel.endswith("Provider") else camel + "Provider"
    return ProviderNames(name=name, module=module, class_name=class_name)


def template_dir(template: str = PROVIDER_TEMPLATE) -> Path:
    """The directory of one of the shipped cookiecutter templates."""
    root = resources.files(TEMPLATES_PACKAGE)
    candidate = root / template
    if not isinstance(candidate, Path) or not (candidate / "cookiecutter.json").is_file():
        raise SkilError(
            f"skil-sdk's {template!r} template is missing from {root}; reinstall skil-sdk "
            "(pip install --force-reinstall skil-sdk)."
        )
    return candidate


def check_target(target: Path, force: bool) -> None:
    """Refuse an existing target, unless ``force`` and it is a directory."""
    if target.is_dir() and not force:
        raise ConflictError(
            f"{target} already exists; choose another name or --output-dir, or pass "
            "--force to render into it (the template's files are overwritten)."
        )
    if target.exists() and not target.is_dir():
        raise ConflictError(
            f"{target} exists and is not a directory; remove it or choose another name."
        )


def _check_line(label: str, value: str) -> None:
    if any(ch in value for ch in "\r\n") or not value.isprintable():
        raise InvalidValueError(
            f"The {label} must be one line of printable text; shorten {value!r} to one line."
        )


def new_provider(
    name: str,
    output_dir: Path | str = ".",
    description: str | None = None,
    author: str | None = None,
    force: bool = False,
    reads_on_executors: bool = False,
) -> Path:
    """Render the provider template into ``output_dir/name`` and return that directory.

    By default the provider's ``data()`` reads its files with Spark into a DataFrame;
    with ``reads_on_executors`` it returns an ExecutorSource that the executors read
    themselves, without Spark, so its jobs also run on the local engine.

    Raises :class:`~skil_sdk.errors.InvalidValueError` for a bad name, description or
    author, and :class:`~skil_sdk.errors.ConflictError` when the target exists (unless
    ``force``: then the template's files overwrite their namesakes, and other files
    stay). Nothing is written when either is raised.
    """
    from cookiecutter.main import cookiecutter

    from skil_sdk import __version__

    names = provider_names(name)
    description = DEFAULT_DESCRIPTION if description is None else description.strip()
    author = "" if author is None else author.strip()
    _check_line("description", description)
    _check_line("author", author)
    output = Path(output_dir).absolute()
    if output.exists() and not output.is_dir():
        raise ConflictError(f"{output} is not a directory; pass a directory as --output-dir.")
    target = output / names.name
    check_target(target, force)
    template = template_dir(PROVIDER_TEMPLATE)

    context = {
        "name": names.name,
        "project_slug": names.name,
        "module_name": names.module,
        "class_name": names.class_name,
        "description": description or DEFAULT_DESCRIPTION,
        "author": author,
        "version": "0.1.0",
        "provider_kind": EXECUTOR_READ if reads_on_executors else DATAFRAME,
        "_skil_sdk_version": __version__,
    }
    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{names.name}-", dir=output))
    try:
        with tempfile.TemporaryDirectory(prefix="skil-cookiecutter-") as scratch:
            # A config of our own keeps cookiecutter's replay files out of the user's
            # home and the user's ~/.cookiecutterrc out of the result.
            config = Path(scratch, "config.yaml")
            config.write_text(
                f"cookiecutters_dir: {json.dumps(str(Path(scratch, 'templates')))}\n"
                f"replay_dir: {json.dumps(str(Path(scratch, 'replay')))}\n",
                encoding="utf-8",
            )
            rendered = Path(
                cookiecutter(
                    str(template),
                    no_input=True,
                    extra_context=context,
                    output_dir=str(staging),
                    config_file=str(config),
                    accept_hooks=False,
                )
            )
        _move_into_place(rendered, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _move_into_place(rendered: Path, target: Path) -> None:
    if not target.exists():
        os.rename(rendered, target)
        return
    for source in sorted(rendered.rglob("*")):
        if source.is_dir():
            continue
        destination = target / source.relative_to(rendered)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, destination)


def project_files(path: Path) -> list[str]:
    """The files under ``path``, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
