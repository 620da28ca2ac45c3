"""``skil-sdk serve``: a real process; token file private; no token in output or argv."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from _server_helpers import BACKSTOP_S
from click.testing import CliRunner

from skil_sdk.cli.main import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(process: subprocess.Popen[bytes], url: str) -> None:
    """Return once ``url`` answers ``/healthz``; fail at once if the process ends first.

    The deadline is only a backstop for a server that hangs; a slow start just waits.
    """
    deadline = time.monotonic() + 10 * BACKSTOP_S
    while process.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=BACKSTOP_S).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)  # between two attempts, not a guess at the start time
    if process.poll() is None:
        process.kill()
    out, err = process.communicate()
    pytest.fail(
        f"skil-sdk serve (exit {process.returncode}) never answered on {url}:\n"
        + (out + err).decode(errors="replace")[-3000:]
    )


def test_serve_prints_the_token_path_never_the_token(skil_home: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from skil_sdk.cli import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SKIL_HOME": str(skil_home)},
    )
    try:
        _wait_until_serving(process, url)
        token_file = skil_home / "server.token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        with httpx.Client(base_url=url, timeout=BACKSTOP_S) as client:
            headers = {"Authorization": f"Bearer {token}"}
            assert client.get("/models", headers=headers).json() == {"models": []}
            assert client.get("/models").status_code == 401
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
        assert token not in cmdline
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10 * BACKSTOP_S)
    text = out.decode() + err.decode()
    assert str(token_file) in text
    assert token not in text


def test_serve_refuses_no_auth_off_loopback() -> None:
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--no-auth"])
    assert result.exit_code == 1
    assert "--no-auth" in result.output
