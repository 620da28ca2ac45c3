"""The web pages: ``/ui/jobs``, ``/ui/jobs/{id}``, ``/ui/models``, ``/ui/plugins`` and login.

Server-rendered HTML (Jinja2 templates in ``templates/``) with one small script
(``static/ui.js``) that polls the JSON API for live progress. Pages need a session
cookie (see :mod:`skil_sdk.server.ui_session`); without one they redirect to the login
page. The JSON API keeps its bearer auth and also accepts the cookie for GET requests.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from skil_sdk import __version__
from skil_sdk.errors import NotFoundError, SkilError
from skil_sdk.server import ui_views as views
from skil_sdk.server.ui_session import clear_session_cookie, has_session, set_session_cookie

HERE = Path(__file__).resolve().parent
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
TERMINAL = ("SUCCEEDED", "FAILED", "KILLED")
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}

router = APIRouter(prefix="/ui", include_in_schema=False)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        int=views.fmt_int,
        rate=views.fmt_rate,
        duration=views.fmt_duration,
        when=views.fmt_time,
        value=views.fmt_value,
        shape=views.fmt_shape,
        percent=views.percent,
    )
    env.globals.update(version=__version__, terminal_states=TERMINAL)
    return env


_ENV = _environment()


class LoginRequiredError(Exception):
    """A page was asked for without a session; answered with a redirect to the login page."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def install(app: FastAPI) -> None:
    """Add the pages, their static files and the login redirect to ``app``."""
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")
    app.add_exception_handler(LoginRequiredError, _login_redirect)

    @app.get("/ui", include_in_schema=False)
    def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/jobs", status_code=303)

    app.include_router(router)


async def _login_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequiredError)
    return RedirectResponse(f"/ui/login?next={quote(exc.target, safe='/')}", status_code=303)


def safe_next(target: str | None) -> str:
    """A same-site page to go to after logging in (anything else becomes ``/ui/jobs``)."""
    if (
        target
        and target.startswith("/ui/")
        and not target.startswith("/ui/login")
        and re.fullmatch(r"/ui/[A-Za-z0-9/._~-]*", target)
    ):
        return target
    return "/ui/jobs"


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``templates/`` with the security headers every page carries."""
    context.setdefault("auth", request.app.state.config.auth)
    context.setdefault("active", "")
    html = _ENV.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _require_session(request: Request) -> None:
    if not has_session(request):
        raise LoginRequiredError(request.url.path)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    """The login form (straight on to the pages when already logged in)."""
    target = safe_next(next)
    if has_session(request):
        return RedirectResponse(target, status_code=303)
    return render(request, "login.html", next=target, error=None)


@router.post("/login")
def login(request: Request, token: str = Form(""), next: str = Form("")) -> Response:
    """Check the admin token; on success set the session cookie and go on."""
    target = safe_next(next)
    admin: str = request.app.state.admin_token
    if request.app.state.config.auth and not (
        token and secrets.compare_digest(token.strip().encode(), admin.encode())
    ):
        message = "That is not the server's admin token; copy it from $SKIL_HOME/server.token."
        return render(request, "login.html", status=401, next=target, error=message)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Forget the session cookie in this browser."""
    response = RedirectResponse("/ui/login", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/jobs")
def jobs_page(request: Request) -> Response:
    """Every job, newest first, with live progress."""
    _require_session(request)
    from skil_sdk.store.jobs import JobStore

    jobs = [job.to_dict() for job in JobStore().list(limit=200)]
    return render(request, "jobs.html", jobs=jobs, spark_session=_spark_session(), active="jobs")


def _spark_session() -> dict[str, Any] | None:
    """The long-lived Spark session's record, when one is up or ended unexpectedly."""
    from skil_sdk.session.state import STOPPED, read_state

    state = read_state()
    if state.state == STOPPED and not state.error:
        return None
    return state.to_dict()


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str) -> Response:
    """One job: settings, executors, downloads, error, chart and log tail."""
    _require_session(request)
    from skil_sdk.store.jobs import JobStore

    store = JobStore()
    try:
        if not JOB_ID.match(job_id):
            raise NotFoundError(f"{job_id[:80]!r} is not a job id.")
        job = store.get(job_id).to_dict()
    except NotFoundError as exc:
        return render(
            request,
            "error.html",
            status=404,
            title="No such job",
            message=exc.message,
            active="jobs",
        )
    from skil_sdk.results import kept_tasks, quarantined_head

    tail = views.log_tail(job.get("log_path"))
    inference = job.get("kind") == "inference"
    return render(
        request,
        "job.html",
        job=job,
        kept=kept_tasks(job.get("output"), job_id) if job.get("state") != "SUCCEEDED" else None,
        quarantined=quarantined_head(job.get("output"), 10) if inference else [],
        downloads=store.downloads(job_id),
        log=tail,
        spark_ui=views.spark_ui_url(job, views.log_head(job.get("log_path")) + "\n" + tail),
        chart=views.rate_chart(job.get("progress_history") or []),
        active="jobs",
    )


@router.get("/models")
def models_page(request: Request) -> Response:
    """Every stored model with its signature."""
    _require_session(request)
    from skil_sdk.store.models import list_models

    models = [record.to_dict() for record in list_models()]
    return render(request, "models.html", models=models, active="models")


@router.get("/plugins")
def plugins_page(request: Request) -> Response:
    """Published plugins, the providers they register, and the current bundle."""
    _require_session(request)
    from skil_sdk.store.plugins import current_plugins, list_plugins

    current = {(p.key, p.version) for p in current_plugins()}
    plugins = [{**p.to_dict(), "current": (p.key, p.version) in current} for p in list_plugins()]
    return render(
        request, "plugins.html", plugins=plugins, bundle=_current_bundle(), active="plugins"
    )


def _current_bundle() -> dict[str, Any] | None:
    """The most recently used cached bundle (what the last build or job used), if any."""
    from skil_sdk.builder.cache import list_bundles

    try:
        bundles = list_bundles()
    except (OSError, SkilError):
        return None
    if not bundles:
        return None
    entry = bundles[0]
    return {
        "hash": entry.hash,
        "file": entry.bundle.name,
        "size": entry.size,
        "last_used": entry.last_used,
        "plugins": [p for p in entry.manifest.get("plugins", []) if isinstance(p, dict)],
        "python": entry.manifest.get("python"),
        "target": entry.manifest.get("target"),
    }


@router.get("/{rest:path}")
def not_found_page(request: Request, rest: str) -> Response:
    """An HTML 404 for any other page under ``/ui`` (``/ui/`` goes to the jobs)."""
    _require_session(request)
    if not rest:
        return RedirectResponse("/ui/jobs", status_code=303)
    return render(
        request,
        "error.html",
        status=404,
        title="No such page",
        message=f"There is no page /ui/{rest[:80]}; pick one from the menu.",
    )
