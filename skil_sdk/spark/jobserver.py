"""The server executors talk to: ``SKIL_SERVER_URL``, or a built-in one for the job."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from skil_sdk.spark.request import LogCallback


@contextlib.contextmanager
def job_server(
    advertise_host: str, on_log: LogCallback, job_id: str = "", shared: str | None = None
) -> Iterator[str]:
    """The base URL executors use for this job: ``SKIL_SERVER_URL``, else ``shared`` (the
    Spark session's server, for a job that runs in it), else a built-in server started
    here (on loopback for local masters, on all interfaces otherwise) until the ``with``
    block ends."""
    external = os.environ.get("SKIL_SERVER_URL")
    if external:
        yield external.rstrip("/")
        return
    if shared:
        on_log(f"This job's web page is {shared}/ui/jobs/{job_id} (the Spark session's server).")
        yield shared
        return
    from skil_sdk.server.embedded import EmbeddedServer

    bind = "127.0.0.1" if advertise_host in ("127.0.0.1", "localhost") else "0.0.0.0"
    server = EmbeddedServer(host=bind)
    url = server.start()
    port = url.rsplit(":", 1)[1].rstrip("/")
    base = f"http://{advertise_host}:{port}"
    on_log(
        f"Serving models and progress for this job at {base}; while the job runs, its web "
        f"page is {base}/ui/jobs/{job_id}"
    )
    try:
        yield f"http://{advertise_host}:{port}"
    finally:
        server.stop()
