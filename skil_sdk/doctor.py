"""``skil-sdk doctor``: checks of everything a job relies on, each ok / warn / fail with its fix.

The checks: Java; the Spark installation (a profile's ``spark_home``, ``SPARK_HOME`` or
pip's pyspark) and its version; ``spark-submit --version``; for YARN, the Hadoop
configuration directory; whether the executors' Python can run the cached bundle
(version and platform against the bundle's interpreter constraints); the advertise host
resolving and a server on this machine being reachable at it; ``SKIL_HOME`` writable;
every stored model and plugin against its sha256; the server token's file mode.
Nothing is changed by a check.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from skil_sdk.errors import SkilError

OK, WARN, FAIL = "ok", "warn", "fail"
_TIMEOUT = 60.0


@dataclass(frozen=True)
class Check:
    """The outcome of one check; ``fix`` says what to do when it is not ok."""

    name: str
    status: str
    message: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "status": self.status, "message": self.message, "fix": self.fix}


@dataclass
class _Context:
    spark_home: Path | None = None
    spark_version: str | None = None
    master: str = "local[*]"
    advertise_host: str | None = None
    profile_spark_home: str | None = None


def _ok(name: str, message: str) -> Check:
    return Check(name, OK, message)


# ---------------------------------------------------------------------------- java, spark


def _java_major(text: str) -> int | None:
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java(ctx: _Context) -> Check:
    """Java is installed (``JAVA_HOME`` or PATH) and new enough for the Spark found."""
    from skil_sdk.spark.jvmarchive import java_binary

    found = java_binary()
    java = str(found) if found else None
    if not java:
        return Check(
            "java",
            FAIL,
            "No Java found (JAVA_HOME unset and no java on PATH).",
            "Install Java 17 or 21 and set JAVA_HOME.",
        )
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("java", FAIL, f"{java} -version failed ({exc}).", "Reinstall Java 17 or 21.")
    major = _java_major(proc.stderr + proc.stdout)
    if major is None:
        return Check("java", WARN, f"Cannot read the version of {java}.", "Use Java 17 or 21.")
    spark_major = (ctx.spark_version or "4").split(".")[0]
    needed = 17 if not spark_major.isdigit() or int(spark_major) >= 4 else 8
    if major < needed:
        return Check(
            "java",
            FAIL,
            f"Java {major} at {java}; Spark {ctx.spark_version} needs {needed}+.",
            f"Install Java {max(needed, 17)} and point JAVA_HOME at it.",
        )
    return _ok("java", f"Java {major} at {java}.")


def _spark_version(home: Path) -> str | None:
    for jar in sorted((home / "jars").glob("spark-core_*.jar")):
        match = re.search(r"spark-core_[\d.]+-(.+)\.jar$", jar.name)
        if match:
            return match.group(1)
    release = home / "RELEASE"
    if release.is_file():
        match = re.search(r"Spark (\S+)", release.read_text(errors="replace"))
        if match:
            return match.group(1)
    return None


def check_spark(ctx: _Context) -> Check:
    """The Spark installation jobs submit with, and its version."""
    from skil_sdk.spark.sparkhome import find_spark_home

    env = os.environ.get("SPARK_HOME")
    if ctx.profile_spark_home is None and env and not (Path(env) / "bin" / "spark-submit").exists():
        return Check(
            "spark",
            FAIL,
            f"SPARK_HOME {env} has no bin/spark-submit.",
            "Point SPARK_HOME at a Spark installation, or unset it to use pip's pyspark.",
        )
    try:
        home = find_spark_home(ctx.profile_spark_home)
    except SkilError as exc:
        return Check(
            "spark",
            FAIL,
            exc.message,
            "Set SPARK_HOME, give the profile a spark_home, or pip install pyspark.",
        )
    ctx.spark_home = home
    ctx.spark_version = _spark_version(home)
    source = "profile" if ctx.profile_spark_home else ("SPARK_HOME" if env else "pip pyspark")
    return _ok("spark", f"Spark {ctx.spark_version or '(version unknown)'} at {home} ({source}).")


def check_spark_submit(ctx: _Context) -> Check:
    """``spark-submit --version`` runs."""
    if ctx.spark_home is None:
        return Check("spark-submit", FAIL, "No Spark installation to run.", "Fix the spark check.")
    submit = ctx.spark_home / "bin" / "spark-submit"
    env = {**os.environ, "SPARK_HOME": str(ctx.spark_home)}
    try:
        proc = subprocess.run(
            [str(submit), "--version"], capture_output=True, text=True, env=env, timeout=_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(
            "spark-submit",
            FAIL,
            f"{submit} --version did not run ({exc}).",
            "Check Java and the Spark installation.",
        )
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return Check(
            "spark-submit",
            FAIL,
            f"{submit} --version exited with {proc.returncode}: {last[0]}",
            "Check JAVA_HOME and the Spark installation.",
        )
    return _ok("spark-submit", f"{submit} --version runs.")


def check_hadoop_conf(ctx: _Context) -> Check:
    """For ``yarn``: HADOOP_CONF_DIR or YARN_CONF_DIR holds core-site.xml and yarn-site.xml."""
    if ctx.master != "yarn":
        return _ok("hadoop-conf", f"Not needed for master {ctx.master}.")
    for var in ("HADOOP_CONF_DIR", "YARN_CONF_DIR"):
        raw = os.environ.get(var)
        if not raw:
            continue
        directory = Path(raw)
        missing = [f for f in ("core-site.xml", "yarn-site.xml") if not (directory / f).is_file()]
        if missing:
            return Check(
                "hadoop-conf",
                FAIL,
                f"{var}={raw} lacks {', '.join(missing)}.",
                f"Point {var} at the cluster's Hadoop client configuration directory.",
            )
        if not (directory / "hdfs-site.xml").is_file():
            return Check(
                "hadoop-conf",
                WARN,
                f"{var}={raw} has no hdfs-site.xml.",
                "Add hdfs-site.xml if jobs read or write hdfs:// paths.",
            )
        return _ok("hadoop-conf", f"{var}={raw} holds core-site.xml and yarn-site.xml.")
    return Check(
        "hadoop-conf",
        FAIL,
        "master is yarn but neither HADOOP_CONF_DIR nor YARN_CONF_DIR is set.",
        "Export HADOOP_CONF_DIR=/etc/hadoop/conf (the cluster's client configuration).",
    )


# ---------------------------------------------------------------------------- bundle


def _latest_bundle() -> dict[str, Any] | None:
    from skil_sdk.builder.cache import list_bundles

    bundles = list_bundles()
    return bundles[0].manifest if bundles else None


def _glibc_of(target: str) -> tuple[int, int] | None:
    match = re.search(r"glibc(\d+)\.(\d+)", target) or re.search(r"manylinux_(\d+)_(\d+)", target)
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_bundle_python(ctx: _Context) -> Check:
    """The executors' Python matches the cached bundle's interpreter constraints."""
    manifest = _latest_bundle()
    if manifest is None:
        return Check(
            "bundle-python",
            WARN,
            "No bundle is built yet, so its Python cannot be checked.",
            "Run `skil-sdk build`.",
        )
    version = str(manifest.get("python", ""))
    constraints = manifest.get("interpreter_constraints") or [f"python{version}"]
    if not ctx.master.startswith("local"):
        return Check(
            "bundle-python",
            WARN,
            f"The bundle needs {', '.join(constraints)} on every executor; a {ctx.master} "
            "cluster's executors cannot be inspected from here.",
            f"Make sure python{version} is on the executors' PATH (docs/clusters.md).",
        )
    python = shutil.which(f"python{version}")
    if python is None:
        return Check(
            "bundle-python",
            FAIL,
            f"The bundle runs with python{version}, which is not on PATH.",
            f"Install Python {version}, or build the bundle with this Python.",
        )
    probe = (
        "import sys, platform, os; print('%d.%d' % sys.version_info[:2]); "
        "print(platform.python_implementation()); print(os.confstr('CS_GNU_LIBC_VERSION') or '')"
    )
    try:
        out = subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, timeout=30
        ).stdout.split("\n")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("bundle-python", FAIL, f"{python} does not run ({exc}).", "Reinstall it.")
    found, impl, libc = ([*out, "", "", ""])[:3]
    if found != version or impl != "CPython":
        return Check(
            "bundle-python",
            FAIL,
            f"{python} is {impl} {found}; the bundle needs CPython {version}.",
            f"Put CPython {version} first on PATH as python{version}.",
        )
    needed = _glibc_of(str(manifest.get("target", "")))
    have = _glibc_of(libc.replace(" ", ""))
    if needed and have and have < needed:
        return Check(
            "bundle-python",
            FAIL,
            f"The bundle targets glibc {needed[0]}.{needed[1]}; this machine has "
            f"{have[0]}.{have[1]}.",
            "Build the bundle for an older manylinux platform (skil-sdk build --platform).",
        )
    return _ok("bundle-python", f"{python} ({impl} {found}) can run the bundle.")


# ---------------------------------------------------------------------------- network


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def _listener(bind: str) -> Iterator[int]:
    server = ThreadingHTTPServer((bind, 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _advertise_host(ctx: _Context) -> str:
    host = ctx.advertise_host or os.environ.get("SKIL_ADVERTISE_HOST")
    if host:
        return host
    master = ctx.master
    if master.startswith("local") or "127.0.0.1" in master or "localhost" in master:
        return "127.0.0.1"
    return socket.getfqdn()


def check_server(ctx: _Context, timeout: float = 3.0) -> Check:
    """The advertise host resolves, and a server on this machine is reachable at it."""
    import httpx

    external = os.environ.get("SKIL_SERVER_URL")
    if external:
        url = external.rstrip("/") + "/healthz"
        try:
            httpx.get(url, timeout=timeout).raise_for_status()
        except httpx.HTTPError as exc:
            return Check(
                "server",
                FAIL,
                f"SKIL_SERVER_URL {external} does not answer ({exc}).",
                "Start `skil-sdk serve` there, or unset SKIL_SERVER_URL.",
            )
        return _ok("server", f"SKIL_SERVER_URL {external} answers.")
    host = _advertise_host(ctx)
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        return Check(
            "server",
            FAIL,
            f"The advertise host {host!r} does not resolve ({exc.strerror}).",
            "Set advertise_host (--advertise-host or the profile) to an address of this "
            "machine the executors can reach.",
        )
    from skil_sdk.server.config import is_loopback

    bind = "127.0.0.1" if is_loopback(host) else ("::" if ":" in host else "0.0.0.0")
    shown = f"[{host}]" if ":" in host else host
    with _listener(bind) as port:
        url = f"http://{shown}:{port}/healthz"
        try:
            httpx.get(url, timeout=timeout).raise_for_status()
        except httpx.HTTPError as exc:
            return Check(
                "server",
                FAIL,
                f"A server on this machine is not reachable at {url} ({type(exc).__name__}).",
                "Set advertise_host to an address of this machine the executors can reach, "
                "and open the port range in the firewall.",
            )
    return _ok("server", f"The advertise host {host} resolves and reaches this machine.")


# ---------------------------------------------------------------------------- SKIL_HOME


def check_home(ctx: _Context) -> Check:
    """SKIL_HOME exists and is writable."""
    from skil_sdk.home import skil_home

    try:
        home = skil_home()
        with tempfile.NamedTemporaryFile(dir=home, prefix=".doctor-"):
            pass
    except (OSError, SkilError) as exc:
        return Check(
            "skil-home",
            FAIL,
            f"SKIL_HOME is not writable ({exc}).",
            "Set SKIL_HOME to a writable directory.",
        )
    return _ok("skil-home", f"{home} is writable.")


def check_models(ctx: _Context) -> Check:
    """Every stored model's files still match their sha256."""
    from skil_sdk.store.models import list_models, verify_model

    models = list_models()
    for record in models:
        try:
            verify_model(record.id)
        except SkilError as exc:
            return Check(
                "models",
                FAIL,
                exc.message,
                f"Run `skil-sdk models remove {record.id}` and add the model again.",
            )
    return _ok("models", f"{len(models)} stored model(s) match their sha256.")


def check_plugins(ctx: _Context) -> Check:
    """Every published plugin wheel still matches its sha256."""
    from skil_sdk.storage import sha256_file
    from skil_sdk.store.plugins import list_plugins

    plugins = list_plugins()
    for plugin in plugins:
        actual = sha256_file(plugin.path)
        if actual != plugin.sha256:
            return Check(
                "plugins",
                FAIL,
                f"Plugin {plugin.name} {plugin.version} has sha256 {actual}, expected "
                f"{plugin.sha256}.",
                f"Run `skil-sdk plugins remove {plugin.name}` and publish it again.",
            )
    return _ok("plugins", f"{len(plugins)} published plugin(s) match their sha256.")


def check_token(ctx: _Context) -> Check:
    """The server token file, when there is one, has mode 0600."""
    from skil_sdk.server.auth import token_path

    path = token_path()
    if not path.exists():
        return _ok("token", "No server token yet (it is created with mode 0600).")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check(
            "token",
            FAIL,
            f"{path} has mode {mode:04o}; other users can read the token.",
            f"Run `chmod 600 {path}`.",
        )
    return _ok("token", f"{path} has mode 0600.")


def check_temp_dir(ctx: _Context) -> Check:
    """No wheel copies of bundles' first runs are left in the temp dir."""
    from skil_sdk.builder.cache import pex_leftovers
    from skil_sdk.storage import tree_size

    leftovers = pex_leftovers()
    if leftovers:
        size = sum(tree_size(entry) for entry in leftovers)
        return Check(
            "temp-dir",
            WARN,
            f"{len(leftovers)} pex-whl-install.* folder(s) ({size / 1e6:,.0f} MB) that "
            f"bundles' first runs left in {tempfile.gettempdir()}.",
            "Run `skil-sdk cache prune` to remove them.",
        )
    return _ok("temp-dir", f"Nothing left behind in {tempfile.gettempdir()}.")


CHECKS: tuple[Callable[[_Context], Check], ...] = (
    check_spark,
    check_java,
    check_spark_submit,
    check_hadoop_conf,
    check_bundle_python,
    check_server,
    check_home,
    check_models,
    check_plugins,
    check_token,
    check_temp_dir,
)


def run_checks(profile: str | None = None) -> tuple[str | None, list[Check]]:
    """Run every check (with ``profile``'s settings, or the default profile's).

    Returns the profile's name (None without one) and the checks, in order.
    """
    from skil_sdk.profiles import get_profile

    ctx = _Context()
    checks: list[Check] = []
    name: str | None = None
    try:
        chosen = get_profile(profile)
    except SkilError as exc:
        checks.append(Check("profile", FAIL, exc.message, "Fix SKIL_HOME/config.toml."))
        chosen = None
    if chosen is not None:
        name = chosen.name
        ctx.profile_spark_home = chosen.spark_home
        ctx.master = str(chosen.spark_args.get("master", ctx.master))
        ctx.advertise_host = chosen.advertise_host
        checks.append(_ok("profile", f"Profile {chosen.name} from {chosen.path}."))
    for check in CHECKS:
        try:
            checks.append(check(ctx))
        except Exception as exc:  # a check that breaks is a failed check, not a crash
            label = check.__name__.removeprefix("check_").replace("_", "-")
            checks.append(Check(label, FAIL, f"The check failed: {exc!r}.", "Report this bug."))
    return name, checks


__all__ = ["CHECKS", "FAIL", "OK", "WARN", "Check", "run_checks"]
