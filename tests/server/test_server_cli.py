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
from click.testing import CliRunner

from skil_sdk.cli.main import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_prints_the_token_path_never_the_token(skil_home: Path) -> None:
    port = _free_port()
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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token_file = skil_home / "server.token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"http://127.0.0.1:{port}/models", headers=headers).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/models").status_code == 401
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
        assert token not in cmdline
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    text = out.decode() + err.decode()
    assert str(token_file) in text
    assert token not in text


def test_serve_refuses_no_auth_off_loopback() -> None:
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--no-auth"])
    assert result.exit_code == 1
    assert "--no-auth" in result.output
