"""The platform a bundle targets: the host, a pex ``--platform`` or a ``--complete-platform``.

A target knows its wheel tags (most specific first), its PEP 508 marker environment,
the ``pip download`` arguments that fetch wheels for it and the ``pex`` arguments that
build for it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import sysconfig
from pathlib import Path

from skil_sdk.errors import InvalidValueError
from skil_sdk.storage import sha256_bytes

_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_PLATFORM_PREFIX = r"^(manylinux_\d+_\d+|manylinux\d+|musllinux_\d+_\d+|linux|macosx_\d+_\d+|win)_?"
_LEGACY_BY_GLIBC = {v: k for k, v in _LEGACY_MANYLINUX.items()}


class Target:
    """Where the bundle's interpreter runs.

    ``tags`` and ``markers`` of the host are computed on first use only: a cache hit
    needs nothing but ``ident``.
    """

    def __init__(
        self,
        ident: str,
        python_version: str,
        *,
        tags: tuple[str, ...] | None = None,
        markers: dict[str, str] | None = None,
        pip_args: tuple[str, ...] = (),
        pex_args: tuple[str, ...] = (),
        host: bool = False,
    ) -> None:
        self.ident = ident
        self.python_version = python_version
        self.pip_args = pip_args
        self.pex_args = pex_args
        self.host = host
        self._tags = tags
        self._markers = markers

    @property
    def tags(self) -> tuple[str, ...]:
        """Supported wheel tags, most specific first."""
        if self._tags is None:
            from packaging.tags import sys_tags

            self._tags = tuple(str(t) for t in sys_tags())
        return self._tags

    @property
    def markers(self) -> dict[str, str]:
        """The PEP 508 marker environment."""
        if self._markers is None:
            from packaging.markers import default_environment

            self._markers = {k: str(v) for k, v in default_environment().items()}
        return self._markers

    def tag_rank(self) -> dict[str, int]:
        """Each supported tag and its preference (lower is better)."""
        return {tag: index for index, tag in enumerate(self.tags)}

    def __repr__(self) -> str:
        return f"Target({self.ident!r})"


def host_target() -> Target:
    """The interpreter running this process (identified without computing its tags)."""
    soabi = sysconfig.get_config_var("SOABI") or sysconfig.get_config_var("EXT_SUFFIX") or ""
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    libc = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else ""
    parts = (soabi or sys.implementation.name, plat, (libc or "").replace(" ", ""))
    ident = "-".join(part for part in parts if part)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Target(ident=ident, python_version=version, host=True)


def platform_target(spec: str) -> Target:
    """A pex abbreviated platform such as ``manylinux2014_x86_64-cp-311-cp311``."""
    from packaging import tags as ptags

    parts = spec.split("-")
    if len(parts) != 4 or not parts[2].replace(".", "").isdigit():
        raise InvalidValueError(
            f"Platform {spec!r} is not of the form PLATFORM-IMPL-VERSION-ABI; use for example "
            "manylinux2014_x86_64-cp-311-cp311."
        )
    plat, impl, raw_version, abi = parts
    digits = raw_version.split(".") if "." in raw_version else [raw_version[0], raw_version[1:]]
    version = (int(digits[0]), int(digits[1]))
    platforms = _expand_platform(plat)
    interpreter = f"{impl}{version[0]}{version[1]}"
    if impl == "cp":
        tags = list(ptags.cpython_tags(version, abis=[abi], platforms=platforms))
    else:
        tags = list(ptags.generic_tags(interpreter, abis=[abi], platforms=platforms))
    tags += list(ptags.compatible_tags(version, interpreter=interpreter, platforms=platforms))
    pip_args: list[str] = []
    for p in platforms:
        pip_args += ["--platform", p]
    pip_args += ["--python-version", f"{version[0]}.{version[1]}", "--implementation", impl]
    pip_args += ["--abi", abi]
    return Target(
        ident=spec,
        tags=tuple(dict.fromkeys(str(t) for t in tags)),
        markers=_markers_for(plat, impl, version),
        python_version=f"{version[0]}.{version[1]}",
        pip_args=tuple(pip_args),
        pex_args=("--platform", spec),
    )


def complete_platform_target(path: Path) -> Target:
    """A pex complete platform: a JSON file with ``marker_environment`` and ``compatible_tags``."""
    try:
        data = json.loads(path.read_text())
        markers = {str(k): str(v) for k, v in data["marker_environment"].items()}
        tags = tuple(str(t) for t in data["compatible_tags"])
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise InvalidValueError(
            f"{path} is not a complete platform file; create one on the target machine with "
            "`pex3 interpreter inspect --markers --tags`."
        ) from exc
    version = markers.get("python_version", "")
    first = tags[0].split("-") if tags else []
    if not version or len(first) != 3:
        raise InvalidValueError(
            f"{path} lacks python_version or compatible_tags; regenerate it with "
            "`pex3 interpreter inspect --markers --tags`."
        )
    platforms = list(dict.fromkeys(t.split("-")[2] for t in tags if t.split("-")[2] != "any"))
    pip_args: list[str] = []
    for p in platforms:
        pip_args += ["--platform", p]
    impl = re.sub(r"\d+$", "", first[0])
    pip_args += ["--python-version", version, "--implementation", impl, "--abi", first[1]]
    described = {"markers": markers, "tags": list(tags)}
    digest = sha256_bytes(json.dumps(described, sort_keys=True).encode())[:16]
    return Target(
        ident=f"complete-{first[0]}-{first[1]}-{first[2]}-{digest}",
        tags=tags,
        markers={**markers, "extra": ""},
        python_version=version,
        pip_args=tuple(pip_args),
        pex_args=("--complete-platform", str(path.resolve())),
    )


def resolve_target(platform: str | None = None, complete_platform: Path | None = None) -> Target:
    """The target named by ``--platform`` or ``--complete-platform``, else the host."""
    if platform and complete_platform:
        raise InvalidValueError("Pass either --platform or --complete-platform, not both.")
    if complete_platform is not None:
        return complete_platform_target(Path(complete_platform))
    if platform and platform != "current":
        return platform_target(platform)
    return host_target()


def _expand_platform(plat: str) -> list[str]:
    """A platform tag and the older ones it is compatible with (manylinux, macOS)."""
    from packaging.tags import mac_platforms

    legacy = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", plat)
    modern = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", plat)
    if legacy or modern:
        if legacy:
            (major, minor), arch = _LEGACY_MANYLINUX[legacy.group(1)], legacy.group(2)
        else:
            assert modern is not None
            major, minor, arch = int(modern.group(1)), int(modern.group(2)), modern.group(3)
        out = []
        for glibc_minor in range(minor, 4, -1):
            out.append(f"manylinux_{major}_{glibc_minor}_{arch}")
            alias = _LEGACY_BY_GLIBC.get((major, glibc_minor))
            if alias:
                out.append(f"{alias}_{arch}")
        return out
    mac = re.fullmatch(r"macosx_(\d+)_(\d+)_(\w+)", plat)
    if mac:
        version = (int(mac.group(1)), int(mac.group(2)))
        return list(mac_platforms(version, mac.group(3)))
    return [plat]


def _markers_for(plat: str, impl: str, version: tuple[int, int]) -> dict[str, str]:
    if plat.startswith(("manylinux", "musllinux", "linux")):
        system, sys_platform, os_name = "Linux", "linux", "posix"
    elif plat.startswith("macosx"):
        system, sys_platform, os_name = "Darwin", "darwin", "posix"
    else:
        system, sys_platform, os_name = "Windows", "win32", "nt"
    machine = re.sub(_PLATFORM_PREFIX, "", plat)
    name = {"cp": "cpython", "pp": "pypy"}.get(impl, impl)
    return {
        "implementation_name": name,
        "implementation_version": f"{version[0]}.{version[1]}.0",
        "os_name": os_name,
        "platform_machine": machine or "x86_64",
        "platform_python_implementation": {"cpython": "CPython", "pypy": "PyPy"}.get(name, name),
        "platform_release": "",
        "platform_system": system,
        "platform_version": "",
        "python_full_version": f"{version[0]}.{version[1]}.0",
        "python_version": f"{version[0]}.{version[1]}",
        "sys_platform": sys_platform,
        "extra": "",
    }
