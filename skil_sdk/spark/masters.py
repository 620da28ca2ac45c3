"""Spark master URLs: their forms, and which kind of cluster each names."""

from __future__ import annotations

import re
from typing import Literal

from skil_sdk.errors import InvalidValueError

MasterKind = Literal["local", "standalone", "yarn", "k8s", "mesos"]

MASTER_KINDS: tuple[MasterKind, ...] = ("local", "standalone", "yarn", "k8s", "mesos")
"""Every kind of master :attr:`SparkArgs.master_kind` can return."""

_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
_LOCAL_RE = re.compile(r"local(?:\[(?P<n>\*|[0-9]+)(?:,(?P<f>[0-9]+))?\])?")
_HOSTPORT_RE = re.compile(rf"{_HOST}:(?P<port>[0-9]{{1,5}})")
_K8S_RE = re.compile(rf"k8s://(?:https?://)?{_HOST}(?::(?P<port>[0-9]{{1,5}}))?/?")
_ZK_RE = re.compile(r"zk://(?P<hosts>[^/]+)/[A-Za-z0-9_./-]*")
_MASTER_EXAMPLE = (
    "'local[*]', 'spark://host:7077', 'yarn', 'k8s://https://host:443' or 'mesos://host:5050'"
)


def _bad_master(master: object, why: str = "is not a Spark master URL") -> InvalidValueError:
    return InvalidValueError(f"master {master!r} {why}; use e.g. {_MASTER_EXAMPLE}.")


def _host_ports_ok(text: str) -> bool:
    for part in text.split(","):
        match = _HOSTPORT_RE.fullmatch(part)
        if match is None or not 1 <= int(match["port"]) <= 65535:
            return False
    return True


def master_kind_of(master: object) -> MasterKind:
    """The kind of a master URL; an :class:`InvalidValueError` if it is not one."""
    if not isinstance(master, str):
        raise _bad_master(master)
    local = _LOCAL_RE.fullmatch(master)
    if local is not None:
        n, failures = local["n"], local["f"]
        if (n not in (None, "*") and int(n) < 1) or (failures is not None and int(failures) < 1):
            raise _bad_master(master, "asks for zero threads or retries")
        return "local"
    if master == "yarn":
        return "yarn"
    if master.startswith("spark://"):
        if _host_ports_ok(master[len("spark://") :]):
            return "standalone"
    elif master.startswith("k8s://"):
        k8s = _K8S_RE.fullmatch(master)
        if k8s is not None and (k8s["port"] is None or 1 <= int(k8s["port"]) <= 65535):
            return "k8s"
    elif master.startswith("mesos://"):
        rest = master[len("mesos://") :]
        zk = _ZK_RE.fullmatch(rest)
        if _host_ports_ok(rest) or (zk is not None and _host_ports_ok(zk["hosts"])):
            return "mesos"
    elif master in ("yarn-client", "yarn-cluster"):
        raise InvalidValueError(
            f"master {master!r} was removed in Spark 2.0; use master='yarn' with "
            f"deploy_mode={master.split('-')[1]!r}."
        )
    raise _bad_master(master)


def local_threads(master: str) -> tuple[int, int | None]:
    """``(worker count, task failures allowed)`` of a local master: ``local`` is 1 worker,
    ``local[*]`` one per core, ``local[N,F]`` N workers and F failures (None when unset)."""
    import os

    match = _LOCAL_RE.fullmatch(master)
    if match is None:
        raise _bad_master(master, "is not a local master")
    threads = match["n"]
    count = (os.cpu_count() or 1) if threads == "*" else int(threads or 1)
    return count, int(match["f"]) if match["f"] else None
