"""The long-lived session's server: the built-in HTTP server (model files, job progress,
the web pages) for the warm jobs, up as long as the session is.

A cold job starts a server of its own for its executors (about a second of its time:
FastAPI's import and uvicorn's start); a warm job uses this one, started beside the
session's driver by ``skil-sdk session start`` (``python -m skil_sdk.session.jobserver
BIND ADVERTISE``, in the SDK's environment, not the bundle's). It records its URL in the
session's record and stops once the session has stopped. Job tokens live in the jobs
store, so it checks the tokens of jobs started after it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from skil_sdk.session.state import read_state, update_state

#: How often it looks at the session's record.
_TICK_S = 0.5


def main(argv: list[str] | None = None) -> int:
    """Serve on ``BIND`` (port chosen by the system), advertised as ``ADVERTISE``, until
    the session stops or SIGTERM."""
    from skil_sdk.server.embedded import EmbeddedServer

    bind, advertise = (sys.argv[1:] if argv is None else argv)[:2]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    session = read_state().submit_pid  # the session it serves, not a later one
    server = EmbeddedServer(host=bind)
    url = server.start()
    port = url.rsplit(":", 1)[1]
    update_state(server_url=f"http://{advertise}:{port}", server_pid=os.getpid())
    try:
        while not stop.wait(_TICK_S):
            current = read_state()
            if not current.is_up or current.submit_pid != session:
                break
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
