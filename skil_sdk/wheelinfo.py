"""What a wheel says about itself: name, version, requirements and entry points.

Read from the wheel's ``.dist-info/METADATA`` and ``entry_points.txt``, never from its
file name alone. The builder and the plugin store both read wheels this way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from skil_sdk.errors import InvalidValueError

ENTRY_POINT_GROUP = "skil_sdk"


@dataclass(frozen=True)
class WheelInfo:
    """The metadata of one wheel file."""

    name: str
    version: str
    filename: str
    requires_dist: tuple[str, ...] = ()
    entry_points: dict[str, dict[str, str]] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> str:
        """The normalized project name (PEP 503: ``My_Plugin`` -> ``my-plugin``)."""
        return canonicalize_name(self.name)

    @property
    def plugin_entry_points(self) -> dict[str, str]:
        """The ``skil_sdk`` entry points: plugin name -> module."""
        return dict(self.entry_points.get(ENTRY_POINT_GROUP, {}))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored beside cached and published wheels)."""
        return {
            "name": self.name,
            "version": self.version,
            "filename": self.filename,
            "requires_dist": list(self.requires_dist),
            "entry_points": self.entry_points,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WheelInfo:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=data["name"],
            version=data["version"],
            filename=data["filename"],
            requires_dist=tuple(data.get("requires_dist", ())),
            entry_points={k: dict(v) for k, v in data.get("entry_points", {}).items()},
        )


def read_wheel(path: Path) -> WheelInfo:
    """Read a wheel's METADATA and entry points; a file that is no wheel is an error."""
    import zipfile
    from email.parser import HeaderParser

    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            dist_info = _dist_info_dir(names, path)
            metadata = zf.read(f"{dist_info}/METADATA").decode("utf-8")
            ep_name = f"{dist_info}/entry_points.txt"
            entry_text = zf.read(ep_name).decode("utf-8") if ep_name in names else ""
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise InvalidValueError(
            f"{path} is not a readable wheel ({exc}); build it again with `pip wheel` or "
            "pass the project directory instead."
        ) from exc
    headers = HeaderParser().parsestr(metadata)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        raise InvalidValueError(
            f"{path} has no Name or Version in its METADATA; rebuild the wheel."
        )
    return WheelInfo(
        name=str(name),
        version=str(version),
        filename=path.name,
        requires_dist=tuple(str(r) for r in headers.get_all("Requires-Dist") or ()),
        entry_points=parse_entry_points(entry_text),
    )


def parse_entry_points(text: str) -> dict[str, dict[str, str]]:
    """Parse an ``entry_points.txt`` into group -> {name: value}."""
    import configparser

    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return {
        section: {k.strip(): v.strip() for k, v in parser.items(section)}
        for section in parser.sections()
    }


def _dist_info_dir(names: list[str], path: Path) -> str:
    candidates = sorted(
        {n.split("/")[0] for n in names if n.count("/") == 1 and n.endswith("/METADATA")}
    )
    candidates = [c for c in candidates if c.endswith(".dist-info")]
    if not candidates:
        raise KeyError(f"no .dist-info/METADATA in {path.name}")
    wanted = canonicalize_name(path.name.split("-")[0])
    for candidate in candidates:
        if canonicalize_name(candidate.split("-")[0]) == wanted:
            return candidate
    return candidates[0]
