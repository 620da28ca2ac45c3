"""Paths that Spark writes (local, ``hdfs://``, ``s3a://``...) through Hadoop's FileSystem.

PySpark has no public file-system API, so this is the one place that reaches the JVM
through the SparkContext's gateway (``_jvm``/``_jsc``); everything else goes through it.
"""

from __future__ import annotations

from typing import Any


class HadoopPath:
    """One path, as the job's Spark (and its Hadoop configuration) sees it."""

    def __init__(self, spark: Any, path: str) -> None:
        context = spark.sparkContext
        self._jvm = context._jvm
        self.path = self._jvm.org.apache.hadoop.fs.Path(path)
        self.fs = self.path.getFileSystem(context._jsc.hadoopConfiguration())

    def exists(self) -> bool:
        """Whether the path exists."""
        return bool(self.fs.exists(self.path))

    def is_file(self) -> bool:
        """Whether the path is a file (not a directory)."""
        return bool(self.fs.getFileStatus(self.path).isFile())

    def read_text(self) -> str:
        """The file's content as UTF-8 text (for small files: metrics, records)."""
        stream = self.fs.open(self.path)
        try:
            data = self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
        finally:
            stream.close()
        return bytes(data).decode("utf-8", errors="replace")

    def list_names(self) -> list[str]:
        """The names of the entries of the directory (sorted)."""
        return sorted(str(status.getPath().getName()) for status in self.fs.listStatus(self.path))

    def delete(self) -> None:
        """Remove the path (recursively)."""
        self.fs.delete(self.path, True)

    def write_text(self, text: str, name: str | None = None) -> None:
        """Write ``text`` (UTF-8) to the path, or to ``name`` inside it."""
        target = self.path if name is None else self._jvm.org.apache.hadoop.fs.Path(self.path, name)
        stream = self.fs.create(target, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
