"""Named cluster profiles in ``SKIL_HOME/config.toml``: several Spark installations side by side.

Example::

    default_profile = "yarn-prod"

    [profiles.local]
    master = "local[4]"

    [profiles.yarn-prod]
    spark_home = "/opt/spark-3.5.1"
    master = "yarn"
    deploy_mode = "client"
    advertise_host = "10.0.0.5"
    pex_root = "/mnt/skil/pex"
    executor_memory = "4g"
    num_executors = 8

    [profiles.yarn-prod.conf]
    "spark.yarn.maxAppAttempts" = "1"

A profile takes ``spark_home`` (the Spark installation whose ``bin/spark-submit`` runs
the job), ``advertise_host`` (the address executors use to reach the server),
``pex_root`` (where executors unpack the bundle: ``spark.executorEnv.PEX_ROOT``),
``conf`` and any :class:`~skil_sdk.SparkArgs` field. Values given on the command line
win over the profile's.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skil_sdk.errors import InvalidValueError, NotFoundError
from skil_sdk.home import skil_home

CONFIG_FILE = "config.toml"
#: Profile keys that are not SparkArgs fields.
OWN_KEYS = ("spark_home", "advertise_host", "pex_root", "engine")
#: The values of a profile's ``engine`` (as ``--engine``).
ENGINES = ("auto", "local", "spark")


def config_path() -> Path:
    """``SKIL_HOME/config.toml``."""
    return skil_home() / CONFIG_FILE


@dataclass(frozen=True)
class Profile:
    """One ``[profiles.NAME]`` table, checked."""

    name: str
    path: Path
    spark_home: str | None = None
    advertise_host: str | None = None
    pex_root: str | None = None
    spark_args: dict[str, Any] = field(default_factory=dict)
    default: bool = False
    #: ``auto``, ``local`` or ``spark``: the engine of jobs that do not say (None: auto).
    engine: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by ``skil-sdk profiles``."""
        return {
            "name": self.name,
            "default": self.default,
            "file": str(self.path),
            "spark_home": self.spark_home,
            "advertise_host": self.advertise_host,
            "pex_root": self.pex_root,
            "engine": self.engine,
            **{"spark_args": self.spark_args},
        }


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidValueError(f"{path} is not valid TOML ({exc}); fix the file.") from exc


def _check_profile(name: str, table: Any, path: Path, default: bool) -> Profile:
    from skil_sdk.spark.args import SparkArgs

    where = f"Profile {name!r} in {path}"
    if not isinstance(table, dict):
        raise InvalidValueError(f"{where} is not a table; write it as [profiles.{name}].")
    fields = {f.name for f in dataclasses.fields(SparkArgs)}
    for key in table:
        if key not in fields and key not in OWN_KEYS:
            raise InvalidValueError(
                f"{where} has an unknown key {key!r}; use spark_home, advertise_host, "
                "pex_root, engine, conf or a SparkArgs field such as master."
            )
    own = {k: table[k] for k in OWN_KEYS if k in table}
    for key, value in own.items():
        if not isinstance(value, str) or not value.strip():
            raise InvalidValueError(f"{where}: {key} must be a non-empty string.")
    if own.get("engine") is not None and own["engine"] not in ENGINES:
        raise InvalidValueError(
            f"{where}: engine must be one of {', '.join(ENGINES)}, not {own['engine']!r}."
        )
    spark_home = own.get("spark_home")
    if spark_home is not None:
        home = Path(spark_home).expanduser()
        if not home.is_dir():
            raise InvalidValueError(
                f"{where}: spark_home {spark_home} is not a directory; point spark_home at a "
                "Spark installation."
            )
        if not (home / "bin" / "spark-submit").exists():
            raise InvalidValueError(
                f"{where}: spark_home {spark_home} has no bin/spark-submit; point spark_home "
                "at a Spark installation."
            )
    spark_args = {k: v for k, v in table.items() if k not in OWN_KEYS}
    if isinstance(spark_args.get("conf"), dict):
        spark_args["conf"] = {str(k): str(v) for k, v in spark_args["conf"].items()}
    try:
        SparkArgs.from_dict(spark_args).validate()
    except InvalidValueError as exc:
        raise InvalidValueError(f"{where}: {exc.message}") from exc
    return Profile(
        name=name,
        path=path,
        spark_home=spark_home,
        advertise_host=own.get("advertise_host"),
        pex_root=own.get("pex_root"),
        spark_args=spark_args,
        default=default,
        engine=own.get("engine"),
    )


def load_profiles() -> tuple[list[Profile], str | None]:
    """Every profile of ``config.toml`` (checked) and the default profile's name."""
    path = config_path()
    config = _read_config(path)
    unknown = sorted(set(config) - {"profiles", "default_profile"})
    if unknown:
        raise InvalidValueError(
            f"{path} has an unknown top-level key {unknown[0]!r}; use default_profile and "
            "[profiles.NAME] tables."
        )
    tables = config.get("profiles", {})
    if not isinstance(tables, dict):
        raise InvalidValueError(f"{path}: profiles must be tables, e.g. [profiles.local].")
    default = config.get("default_profile")
    if default is not None and default not in tables:
        raise InvalidValueError(
            f"{path}: default_profile {default!r} names no [profiles.{default}] table; add it "
            "or change default_profile."
        )
    profiles = [
        _check_profile(name, table, path, name == default) for name, table in tables.items()
    ]
    return sorted(profiles, key=lambda p: p.name), default


def get_profile(name: str | None = None) -> Profile | None:
    """The profile ``name``; without a name the default profile, or None when there is none."""
    profiles, default = load_profiles()
    wanted = name or default
    if wanted is None:
        return None
    for profile in profiles:
        if profile.name == wanted:
            return profile
    known = ", ".join(p.name for p in profiles) or "none"
    raise NotFoundError(
        f"No profile {wanted!r} in {config_path()} (profiles: {known}); add a "
        f"[profiles.{wanted}] table or pick another with --profile."
    )


def apply_profile(request: Any, name: str | None) -> Any:
    """``request`` (an InferenceRequest) with the profile's settings filled in.

    A SparkArgs field takes the profile's value unless the request already differs from
    the default; ``conf`` entries are merged (the request's win); ``spark_home`` and
    ``advertise_host`` fill the request's when unset, and ``engine`` when the request
    names none; ``pex_root`` becomes ``spark.executorEnv.PEX_ROOT``. Without a name the
    default profile applies, if any.
    """
    from skil_sdk.spark.args import SparkArgs

    profile = get_profile(name)
    if profile is None:
        return request
    defaults = SparkArgs().to_dict()
    current = request.spark_args.to_dict()
    merged = dict(current)
    for key, value in profile.spark_args.items():
        if key == "conf":
            merged["conf"] = {**value, **current["conf"]}
        elif current[key] == defaults[key]:
            merged[key] = value
    if profile.pex_root:
        merged["conf"] = {"spark.executorEnv.PEX_ROOT": profile.pex_root, **merged["conf"]}
    return dataclasses.replace(
        request,
        spark_args=SparkArgs.from_dict(merged),
        spark_home=request.spark_home or profile.spark_home,
        advertise_host=request.advertise_host or profile.advertise_host,
        engine=request.engine or profile.engine,
        profile=profile.name,
    )
