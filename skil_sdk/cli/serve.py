"""``skil-sdk serve``: run the built-in HTTP server."""

from __future__ import annotations

import click

from skil_sdk.cli.output import info


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=9008, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--no-auth", is_flag=True, help="Serve without tokens (refused unless --host is loopback)."
)
@click.option(
    "--max-upload-mb",
    default=1024,
    show_default=True,
    type=click.IntRange(1),
    help="Largest request body (413 beyond it).",
)
@click.option(
    "--max-rows",
    default=8192,
    show_default=True,
    type=click.IntRange(1),
    help="Most rows in one predict request.",
)
@click.option(
    "--request-timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds one predict may run (503 beyond it).",
)
@click.option(
    "--threads",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="onnxruntime threads per model (0: onnxruntime's default).",
)
def serve(
    host: str,
    port: int,
    no_auth: bool,
    max_upload_mb: int,
    max_rows: int,
    request_timeout: float,
    threads: int,
) -> None:
    """Serve model files, predict, plugin uploads and job progress over HTTP.

    Every route but /healthz needs 'Authorization: Bearer <token>'; the admin token is
    created on first start in SKIL_HOME/server.token (mode 0600).
    """
    import uvicorn

    from skil_sdk.server.app import create_app
    from skil_sdk.server.auth import token_path
    from skil_sdk.server.config import MIB, ServerConfig

    config = ServerConfig(
        host=host,
        port=port,
        auth=not no_auth,
        max_upload_bytes=max_upload_mb * MIB,
        max_rows=max_rows,
        request_timeout=request_timeout,
        intra_op_threads=threads,
    ).check()
    app = create_app(config)
    if config.auth:
        info(f"Admin token: {token_path()} (send it as 'Authorization: Bearer <token>').")
    else:
        info("Serving without auth (--no-auth): anyone on this machine can call the API.")
    shown = f"[{host}]" if ":" in host else host
    info(f"Serving on http://{shown}:{port} (Ctrl-C to stop).")
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_keep_alive=30)
