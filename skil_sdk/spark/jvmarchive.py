"""A class-data archive of the driver's JVM, made once per machine and Spark install.

A cold job's driver JVM loads about 15,000 classes (Spark, Hadoop, Arrow, Parquet, Scala)
from Spark's jars before its first row, seconds of every job's start. Java's class-data
sharing (CDS) maps them from an archive instead. There is one archive per Java, Spark
install and driver class path, in the node cache (``SKIL_NODE_CACHE/jvm/KEY/``):

1. The first cold job that finds no archive records the classes its driver loads
   (``-XX:DumpLoadedClassList``: a text file of under 1 MB, written as classes load).
2. When that job has succeeded, a background process of low priority dumps the archive
   from the list (``java -Xshare:dump``; tens of seconds, about 170 MB), under a
   temporary name that is renamed when it is complete, and stamps it (size and mtime).
3. Later drivers map it (``-XX:SharedArchiveFile``). An archive whose stamp does not match
   is removed, and the next job records again. A JVM that cannot use an archive (another
   class path) runs without it: Java's default ``-Xshare:auto``.

Only drivers on this machine use it (local masters, client deploy mode), on Linux (the
driver JVM's command line and memory maps are read from ``/proc``), and only when the
user's own driver JVM options leave class-data sharing alone.
``SKIL_JVM_ARCHIVE=off`` turns it off.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skil_sdk.storage import atomic_write_text

ARCHIVE_ENV = "SKIL_JVM_ARCHIVE"
#: JVM options that mean the user manages class-data sharing: theirs are kept, ours dropped.
_USER_CDS_OPTIONS = ("Xshare", "SharedArchiveFile", "SharedClassListFile",
                     "DumpLoadedClassList", "ArchiveClassesAtExit")  # fmt: skip
#: Environment variables from which Spark's launcher adds to the driver's class path.
_CLASS_PATH_ENV = ("SPARK_CONF_DIR", "HADOOP_CONF_DIR", "YARN_CONF_DIR",
                   "SPARK_DIST_CLASSPATH", "SPARK_CLASSPATH")  # fmt: skip
#: Archives kept per node cache (one per Java, Spark install and driver class path).
KEEP_ARCHIVES = 2
ARCHIVE, CLASS_LIST, STAMP, CLAIM, DUMP_PLAN, DUMP_LOG, FAILED = (
    "classes.jsa", "classes.lst", "classes.jsa.stamp", "dump.claim", "dump.json", "dump.log",
    "dump.failed",
)  # fmt: skip
#: How many times a running JVM's memory maps are read for the archive.
_MAP_LOOKS = 10
#: What a job's driver JVM did with the archive (``jvm_archive`` in the job record).
USED, RECORDING, DUMPING, UNUSED = "used", "recording", "dumping", "unused"


def disabled() -> bool:
    """True when ``SKIL_JVM_ARCHIVE`` turns the archive off."""
    return os.environ.get(ARCHIVE_ENV, "").strip().lower() in ("off", "0", "false", "no")


def java_binary(env: dict[str, str] | None = None) -> Path | None:
    """The ``java`` spark-submit runs: ``JAVA_HOME/bin/java`` when ``JAVA_HOME`` is set,
    else the one on ``PATH``; None when that is missing."""
    env = env if env is not None else dict(os.environ)
    home = env.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        return java if java.exists() else None
    found = shutil.which("java", path=env.get("PATH"))
    return Path(found) if found else None


def archive_key(spark_home: Path, java: Path, class_path: str = "") -> str:
    """What an archive depends on: the Java binary, the Spark install's jars and the
    driver's extra class path; any change gives another key, so another archive."""

    def stat_of(path: Path) -> list[Any]:
        info = path.stat()
        return [path.name, info.st_size, info.st_mtime_ns]

    real_java = java.resolve()
    jars = spark_home / "jars"
    listing = sorted(stat_of(p) for p in jars.iterdir()) if jars.is_dir() else []
    facts = {
        "java": [str(real_java), *stat_of(real_java)[1:]],
        "spark_home": str(spark_home.resolve()),
        "jars": listing,
        "class_path": class_path,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class JvmArchive:
    """The archive of one driver JVM kind, and what one job does with it."""

    directory: Path
    #: The class list this job's driver records (None: it records none).
    recording: Path | None = None
    #: The driver JVM's command line, read while it runs (for the dump).
    java_command: list[str] = field(default_factory=list)
    #: True once the running driver JVM was seen to map the archive.
    mapped: bool = False
    _looks: int = 0

    @property
    def archive(self) -> Path:
        return self.directory / ARCHIVE

    def ready(self) -> bool:
        """True when the archive is complete: its stamp matches its size and mtime. A
        damaged or replaced archive is removed with its list, so that it is made again."""
        try:
            info = self.archive.stat()
            stamp = json.loads((self.directory / STAMP).read_text())
        except (OSError, ValueError):
            return False
        if [info.st_size, info.st_mtime_ns] == [stamp.get("size"), stamp.get("mtime_ns")]:
            return True
        if not self._dumping():
            for name in (ARCHIVE, STAMP, CLASS_LIST):
                with contextlib.suppress(OSError):
                    (self.directory / name).unlink()
        return False

    def _dumping(self) -> bool:
        """True while a dump runs: its process holds an exclusive ``flock`` on the claim."""
        try:
            fd = os.open(self.directory / CLAIM, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    def mapping_options(self) -> list[str]:
        """The JVM options that map the archive when it is ready (nothing is recorded:
        for long-lived drivers such as ``skil-sdk session``'s)."""
        return [f"-XX:SharedArchiveFile={self.archive}"] if self.ready() else []

    def java_options(self) -> list[str]:
        """The driver JVM options of a job: map the archive when it is ready; record the
        loaded classes when neither an archive nor a class list is there yet."""
        if self.ready():
            return self.mapping_options()
        if (self.directory / CLASS_LIST).exists():
            # its dump runs, failed (dump.failed), or was stopped: then it starts again
            plan = self.directory / DUMP_PLAN
            if not (self.directory / FAILED).exists() and plan.exists():
                with contextlib.suppress(OSError, ValueError):
                    self._start_dump(json.loads(plan.read_text()))
            return []
        self.directory.mkdir(parents=True, exist_ok=True)
        self.recording = self.directory / f"{CLASS_LIST}.{os.getpid()}.{time.time_ns()}.tmp"
        return [f"-XX:DumpLoadedClassList={self.recording}"]

    def state(self) -> str:
        """What this job's driver did with the archive (:data:`USED`, :data:`RECORDING`...)."""
        if self.mapped:
            return USED
        if self.recording is not None:
            return RECORDING
        return DUMPING if self._dumping() else UNUSED

    def watch(self, pid: int) -> None:
        """Called while spark-submit (``pid``) runs: once it is the JVM, keep its command
        line (for the dump) and see whether it mapped the archive."""
        if self.mapped or self._looks >= _MAP_LOOKS:
            return
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return
        args = [part.decode(errors="replace") for part in command if part]
        if not args or not args[0].endswith("java"):
            return
        self.java_command = args
        self._looks = _MAP_LOOKS if self.recording is not None else self._looks + 1
        if self.recording is None:
            with contextlib.suppress(OSError):
                maps = Path(f"/proc/{pid}/maps").read_bytes()
                self.mapped = os.fsencode(os.path.realpath(self.archive)) in maps

    def after_job(self, succeeded: bool) -> bool:
        """After the job: keep a successful job's class list and start the dump in the
        background; drop a failed job's. True if a dump was started."""
        recorded, self.recording = self.recording, None
        if recorded is None:
            return False
        plan = dump_command(self.java_command, self.directory)
        if not succeeded or plan is None or not _looks_complete(recorded):
            with contextlib.suppress(OSError):
                recorded.unlink()
            return False
        os.replace(recorded, self.directory / CLASS_LIST)
        return self._start_dump(plan)

    def _start_dump(self, plan: list[str]) -> bool:
        """Start the dump in the background unless one runs; True if started. The claim's
        exclusive ``flock`` is taken here and passed on to the dump's process, which holds
        it until it ends (so a dump that dies leaves no claim behind)."""
        fd = os.open(self.directory / CLAIM, os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        try:
            atomic_write_text(self.directory / DUMP_PLAN, json.dumps(plan))
            with (self.directory / DUMP_LOG).open("ab") as log:
                subprocess.Popen(
                    [sys.executable, "-m", "skil_sdk.spark.jvmarchive", str(self.directory)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=(fd,),
                    preexec_fn=_lower_priority,
                )
        finally:
            os.close(fd)
        return True


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(19)


def _looks_complete(class_list: Path) -> bool:
    """A class list of a driver that got as far as Spark's SQL (hundreds of lines at least)."""
    try:
        text = class_list.read_text(errors="replace")
    except OSError:
        return False
    return "org/apache/spark/SparkContext" in text


def dump_command(java_command: list[str], directory: Path) -> list[str] | None:
    """The ``java -Xshare:dump`` command that archives ``directory``'s class list for
    drivers started as ``java_command`` (the same Java, class path and module options)."""
    if not java_command:
        return None
    java, rest = java_command[0], java_command[1:]
    class_path = None
    for flag, value in itertools.pairwise(rest):
        if flag in ("-cp", "-classpath", "--class-path"):
            class_path = value
            break
    if class_path is None:
        return None
    modules = [arg for arg in rest if arg.startswith("--add-modules")]
    return [
        java, "-Xshare:dump", "-XX:+IgnoreUnrecognizedVMOptions",
        f"-XX:SharedClassListFile={directory / CLASS_LIST}",
        f"-XX:SharedArchiveFile={directory / ARCHIVE}.tmp",
        "-cp", class_path, *modules,
    ]  # fmt: skip


def driver_archive(
    args: Any, spark_home: Path, env: dict[str, str] | None = None
) -> JvmArchive | None:
    """The archive for the driver of a spark-submit with ``args`` (a SparkArgs), or None
    where it does not apply: turned off, not Linux, a driver on another machine (cluster
    deploy mode), the user's own class-data options, or no ``java`` found."""
    from skil_sdk.spark.request import node_cache_dir

    if disabled() or not sys.platform.startswith("linux"):
        return None
    if args.deploy_mode == "cluster" and args.master_kind != "local":
        return None
    if "spark.driver.extraJavaOptions" in args.conf or _defaults_set_java_options(
        args, spark_home, env
    ):
        return None  # --driver-java-options would replace those: leave them as they are
    if any(option in (args.driver_java_options or "") for option in _USER_CDS_OPTIONS):
        return None
    java = java_binary(env)
    if java is None or not spark_home.is_dir():
        return None
    environment = env if env is not None else dict(os.environ)
    class_path = ":".join(
        [args.driver_class_path or "", str(args.conf.get("spark.driver.extraClassPath", "")),
         *(environment.get(name, "") for name in _CLASS_PATH_ENV)]
    )  # fmt: skip
    try:
        key = archive_key(spark_home, java, class_path)
    except OSError:
        return None
    root = Path(node_cache_dir()).absolute() / "jvm"
    if any(char.isspace() or char in "'\"" for char in str(root)):
        return None  # Spark splits driver JVM options on whitespace
    _keep_newest(root)
    return JvmArchive(root / key)


def _defaults_set_java_options(args: Any, spark_home: Path, env: dict[str, str] | None) -> bool:
    """True when a properties file or ``spark-defaults.conf`` sets the driver's JVM options
    (which ``--driver-java-options`` would replace)."""
    environment = env if env is not None else dict(os.environ)
    conf_dir = environment.get("SPARK_CONF_DIR") or str(spark_home / "conf")
    files = [args.properties_file] if args.properties_file else []
    files.append(str(Path(conf_dir) / "spark-defaults.conf"))
    for name in files:
        try:
            text = Path(name).expanduser().read_text(errors="replace")
        except OSError:
            continue
        if any(line.strip().startswith("spark.driver.extraJavaOptions")
               for line in text.splitlines()):  # fmt: skip
            return True
    return False


def _keep_newest(root: Path) -> None:
    """Remove all but the :data:`KEEP_ARCHIVES` most recently made archives (never one
    whose dump runs)."""
    with contextlib.suppress(OSError):
        made = sorted(
            (d for d in root.iterdir() if (d / STAMP).exists()),
            key=lambda d: (d / STAMP).stat().st_mtime,
            reverse=True,
        )
        for stale in made[KEEP_ARCHIVES:]:
            if not JvmArchive(stale)._dumping():
                shutil.rmtree(stale, ignore_errors=True)


def with_java_options(args: Any, options: list[str]) -> Any:
    """``args`` (a SparkArgs) with ``options`` added to its driver JVM options."""
    import dataclasses

    if not options:
        return args
    joined = " ".join([*([args.driver_java_options] if args.driver_java_options else []),
                       *options])  # fmt: skip
    return dataclasses.replace(args, driver_java_options=joined)


def dump(directory: Path) -> int:
    """Dump ``directory``'s archive from its class list and plan; stamp it; exit code.
    A dump that fails leaves ``dump.failed`` (no job starts it again)."""
    plan = json.loads((directory / DUMP_PLAN).read_text())
    partial = directory / f"{ARCHIVE}.tmp"
    try:
        code = subprocess.run(plan, stdin=subprocess.DEVNULL, check=False).returncode
        if code == 0 and partial.is_file():
            partial.chmod(0o444)
            os.replace(partial, directory / ARCHIVE)
            info = (directory / ARCHIVE).stat()
            stamp = {"size": info.st_size, "mtime_ns": info.st_mtime_ns}
            atomic_write_text(directory / STAMP, json.dumps(stamp))
        else:
            atomic_write_text(directory / FAILED, f"java -Xshare:dump exited with {code}\n")
        return code
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
        with contextlib.suppress(OSError):
            (directory / CLAIM).unlink()


if __name__ == "__main__":
    raise SystemExit(dump(Path(sys.argv[1])))
