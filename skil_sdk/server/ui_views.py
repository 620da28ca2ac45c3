"""What the web pages show, computed from store records: percentages, durations, the
rows/s chart (inline SVG), the tail of a job's log and its Spark UI address."""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

LOG_TAIL_LINES = 80
LOG_TAIL_BYTES = 64 * 1024
# Spark's own whole address of its UI: Spark 3 logs it once bound, every version on stopping.
_SPARK_UI_AT = re.compile(
    r"(?:Bound SparkUI to \S+, and started at|Stopped Spark web UI at) (https?://[^\s'\"<>]+)"
)
# The port Spark bound (4041 and up when 4040 was taken), and the address it bound to.
_SPARK_UI_PORT = re.compile(r"Successfully started service 'SparkUI' on port (\d+)")
_SPARK_UI_BIND = re.compile(r"Start Jetty ([\w.:\[\]-]+):\d+ for SparkUI")
_SPARK_DRIVER_HOST = re.compile(r"BlockManagerId\(driver, ([\w.:\[\]-]+), \d+")
_WILDCARD_HOSTS = ("0.0.0.0", "[::]", "::")
_SPARK_UI_STOPPED = "Stopped Spark web UI"


def percent(job: dict[str, Any]) -> float:
    """How far a job is, 0-100: rows when their total is known, else tasks."""
    if job.get("state") == "SUCCEEDED":
        return 100.0
    done, total = job.get("rows_done") or 0, job.get("rows_total")
    if not total:
        done, total = job.get("tasks_done") or 0, job.get("tasks_total")
    if not total:
        return 0.0
    return max(0.0, min(100.0, 100.0 * done / total))


def fmt_int(value: Any) -> str:
    """``12,345``, or an em dash for None."""
    return "—" if value is None else f"{int(value):,}"


def fmt_rate(value: Any) -> str:
    """Rows per second, to three significant figures at most."""
    if value is None:
        return "—"
    rate = float(value)
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def fmt_duration(seconds: Any) -> str:
    """``42 s``, ``3 m 07 s``, ``2 h 05 m``."""
    if seconds is None:
        return "—"
    total = round(float(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def fmt_time(epoch: Any) -> str:
    """A UTC timestamp, ``2026-01-31 12:00:05 UTC``."""
    if not epoch:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(epoch)))


def fmt_value(value: Any) -> str:
    """A setting's value as text (JSON for lists and mappings)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def fmt_shape(shape: Any) -> str:
    """``[N, 784]``, or ``any`` when the model leaves the shape open."""
    if shape is None:
        return "any"
    return "[" + ", ".join(str(d) if d is not None else "?" for d in shape) + "]"


def rate_series(history: list[list[float]]) -> list[tuple[float, float]]:
    """``(seconds since the first sample, rows/s since the previous sample)`` pairs."""
    points: list[tuple[float, float]] = []
    if len(history) < 2:
        return points
    start = float(history[0][0])
    points.append((0.0, 0.0))
    for (t0, r0), (t1, r1) in itertools.pairwise(history):
        dt = float(t1) - float(t0)
        if dt <= 0:
            continue
        points.append((float(t1) - start, max(0.0, (float(r1) - float(r0)) / dt)))
    return points


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value)))
    magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def rate_chart(history: list[list[float]], width: int = 640, height: int = 220) -> Markup:
    """An inline SVG line chart of rows/s over the job's run (empty markup without data)."""
    points = rate_series(history)
    if len(points) < 2:
        return Markup("")
    left, right, top, bottom = 64, 12, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    t_max = max(points[-1][0], 1.0)
    y_max = _nice_ceiling(max(rate for _t, rate in points))

    def x(t: float) -> float:
        return left + plot_w * t / t_max

    def y(rate: float) -> float:
        return top + plot_h * (1 - rate / y_max)

    line = " ".join(f"{x(t):.1f},{y(r):.1f}" for t, r in points)
    area = f"{x(0):.1f},{y(0):.1f} {line} {x(points[-1][0]):.1f},{y(0):.1f}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Rows per second over {fmt_duration(t_max)}" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        "<title>Rows per second over time</title>",
    ]
    for i in range(5):
        value = y_max * i / 4
        gy = y(value)
        parts.append(
            f'<line class="grid" x1="{left}" y1="{gy:.1f}" x2="{width - right}" y2="{gy:.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end">'
            f"{escape(fmt_rate(value))}</text>"
        )
    for i in range(5):
        t = t_max * i / 4
        parts.append(
            f'<text class="axis" x="{x(t):.1f}" y="{height - 10}" text-anchor="middle">'
            f"{escape(fmt_duration(t))}</text>"
        )
    parts.append(f'<polygon class="area" points="{area}"/>')
    parts.append(f'<polyline class="line" points="{line}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def log_tail(log_path: str | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a job's log (reading at most the last 64 KiB)."""
    if not log_path:
        return ""
    path = Path(log_path)
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").splitlines()
    if size > LOG_TAIL_BYTES and text:
        text = text[1:]
    return "\n".join(text[-lines:])


def log_head(log_path: str | None) -> str:
    """The first 64 KiB of a job's log (where Spark logs its UI address)."""
    if not log_path:
        return ""
    try:
        with Path(log_path).open("rb") as handle:
            return handle.read(LOG_TAIL_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


def spark_ui_url(job: dict[str, Any], log: str) -> dict[str, Any] | None:
    """The Spark UI of the job's driver (from its record or its log): ``url`` and ``live``.

    The address is the one Spark reported: its whole URL when it logged one, else the port
    it says it bound (not the 4040 it first tried) on the address it bound to, or on the
    driver's host when it bound to every interface. ``None`` until Spark reports a port.
    """
    recorded = (job.get("details") or {}).get("spark_ui_url")
    stopped = _SPARK_UI_STOPPED in log or job.get("state") in ("SUCCEEDED", "FAILED", "KILLED")
    if isinstance(recorded, str) and recorded.startswith(("http://", "https://")):
        return {"url": recorded, "live": not stopped}
    urls = _SPARK_UI_AT.findall(log)
    if urls:
        return {"url": urls[-1], "live": not stopped}
    ports = _SPARK_UI_PORT.findall(log)
    if not ports:
        return None
    binds = [h for h in _SPARK_UI_BIND.findall(log) if h not in _WILDCARD_HOSTS]
    host = binds[-1] if binds else (_SPARK_DRIVER_HOST.findall(log) or ["localhost"])[-1]
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return {"url": f"http://{host}:{ports[-1]}", "live": not stopped}
