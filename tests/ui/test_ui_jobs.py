"""The jobs, job, models and plugins pages in a real browser, over real Spark jobs.

Two small detached jobs start together: one whose progress bar the jobs page follows live
to 100 %, and one that fails (its model wants 4 features, the provider gives 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _model_fixtures as models
import pytest
from _tmpdirs import removed_after
from _ui_helpers import login, screenshot, skil, wait_for

from skil_sdk.server.embedded import EmbeddedServer
from skil_sdk.store.jobs import JobStore
from skil_sdk.store.models import ModelRecord, add_model

pytestmark = pytest.mark.slow

ROWS = 20_000
TASKS = 16
ROW_STATE = """(id) => {
  const row = document.querySelector(`tr[data-job="${id}"]`);
  if (!row) return null;
  return [row.querySelector('[data-field="state"]').textContent,
          Number(row.querySelector('[data-field="progress"]').getAttribute('aria-valuenow'))];
}"""


@dataclass(frozen=True)
class Jobs:
    """The two jobs of this module."""

    ok: str
    ok_model: ModelRecord
    ok_output: Path
    failing: str


def start_job(model_id: str, output: Path, rows: int, *extra: str) -> str:
    """Start a detached `skil-sdk infer` of the squares provider; return the job id."""
    completed = skil(
        "infer",
        "--model",
        model_id,
        "--provider",
        "squares",
        "--provider-option",
        f"n={rows}",
        "--output",
        str(output),
        "--master",
        "local[2]",
        "--detach",
        *extra,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    job_id: str = json.loads(completed.stdout)["job_id"]
    return job_id


@pytest.fixture(scope="module")
def jobs(
    request: pytest.FixtureRequest,
    built_bundle: Any,
    node_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Jobs]:
    """Both jobs, started detached in the session bundle's home (they run side by side)."""
    work = tmp_path_factory.mktemp("ui-jobs")
    home = str(Path(built_bundle.bundle).parents[3])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIL_HOME", home)
        patch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        # seed 11: bytes no other test adds, so this model is filed under "ui-tests"
        ok_model = add_model(
            models.mlp_model(work, (1, 3, 2), seed=11), "ui-tests", name="squares-mlp"
        )
        bad_model = add_model(
            models.small_mlp_model(work, seed=11), "ui-tests", name="four-features"
        )
        ok = start_job(
            ok_model.id, work / "out", ROWS, "--conf", f"spark.default.parallelism={TASKS}"
        )
        failing = start_job(bad_model.id, work / "failing", 30)
    with removed_after(request, work):
        yield Jobs(ok, ok_model, work / "out", failing)
        _stop_and_wait(home, [ok, failing])  # nothing writes into work when it is removed


def _stop_and_wait(home: str, job_ids: list[str]) -> None:
    """Kill whichever of ``job_ids`` still runs (a test run with -k may not wait for
    them) and wait until every one has ended."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIL_HOME", home)
        for job_id in job_ids:
            if not JobStore().get(job_id).is_finished:
                skil("jobs", "kill", job_id)
        wait_for(
            lambda: all(JobStore().get(job_id).is_finished for job_id in job_ids),
            300,
            "the UI tests' jobs to end",
        )


@pytest.fixture()
def server(bundle_home: Path) -> Iterator[EmbeddedServer]:
    """The built-in server over the bundle's home, where the jobs run."""
    with EmbeddedServer() as running:
        yield running


def test_a_job_advances_to_100_percent_live_and_its_page_shows_executors(
    jobs: Jobs, server: EmbeddedServer, page: Any
) -> None:
    login(page, server)
    page.goto(server.url + "/ui/jobs")
    page.evaluate("window.samePage = true")
    seen: list[tuple[str, float]] = []

    def finished() -> bool:
        value = page.evaluate(ROW_STATE, jobs.ok)
        if value and (not seen or tuple(value) != seen[-1]):
            seen.append((value[0], value[1]))
        return bool(value) and value[0] in ("SUCCEEDED", "FAILED", "KILLED")

    wait_for(finished, 300, f"job {jobs.ok} to finish on /ui/jobs")
    assert seen[-1] == ("SUCCEEDED", 100.0), seen
    assert seen[0][1] < 100 and seen[0][0] in ("SUBMITTED", "RUNNING"), seen
    percents = [p for _state, p in seen]
    assert percents == sorted(percents), f"the bar only moves forward: {seen}"
    # (whether a poll lands between two tasks depends on the machine's load: not asserted)
    assert page.evaluate("window.samePage === true"), "updated live, without a reload"
    wait_for(
        lambda: (page.evaluate(ROW_STATE, jobs.failing) or [""])[0] == "FAILED",
        120,
        "the failing job to fail",
    )
    screenshot(page, "ui-jobs.png")

    page.click(f'a[href="/ui/jobs/{jobs.ok}"]')
    page.wait_for_url(f"**/ui/jobs/{jobs.ok}")
    assert page.locator('.summary [data-field="state"]').inner_text() == "SUCCEEDED"
    assert page.locator('[data-field="rows"]').inner_text() == f"{ROWS:,} / {ROWS:,}"
    assert page.locator('[data-field="output"]').inner_text() == str(jobs.ok_output)
    executors = page.locator("table.executors tbody tr")
    assert executors.count() >= 1
    bundle_hash = JobStore().get(jobs.ok).details["bundle_hash"]
    assert bundle_hash[:12] in executors.first.inner_text()
    assert page.locator("svg.chart").count() == 1
    spark_args = page.locator("section.card", has_text="Spark arguments").inner_text()
    assert "spark.default.parallelism" in spark_args and "local[2]" in spark_args
    assert "n\t20000" in page.locator("section.card", has_text="Provider options").inner_text()
    screenshot(page, "ui-job.png")


def test_a_failed_job_shows_its_error(jobs: Jobs, server: EmbeddedServer, page: Any) -> None:
    login(page, server)
    page.goto(f"{server.url}/ui/jobs/{jobs.failing}")
    # the page follows a running job and shows the error once it fails
    page.locator(".error-card").wait_for(timeout=180_000)
    assert page.locator('.summary [data-field="state"]').inner_text() == "FAILED"
    error = page.locator('[data-field="error"]').inner_text()
    assert "expects 4 values per row" in error, error
    assert page.locator("pre.log").inner_text().strip()
    screenshot(page, "ui-job-failed.png")


def test_models_and_plugins_pages(
    jobs: Jobs, server: EmbeddedServer, built_bundle: Any, page: Any
) -> None:
    login(page, server)
    page.goto(f"{server.url}/ui/models")
    card = page.locator(f'section.model[id="{jobs.ok_model.id}"]')
    inputs = card.locator("table.inputs tbody tr").first.inner_text()
    assert "input" in inputs and "float32" in inputs and "[N, 1]" in inputs
    outputs = card.locator("table.outputs tbody tr").first.inner_text()
    assert "float32" in outputs and "[N, 2]" in outputs
    text = card.inner_text()
    assert jobs.ok_model.sha256 in text and "ui-tests" in text
    screenshot(page, "ui-models.png")

    page.goto(f"{server.url}/ui/plugins")
    assert "squares" in page.locator("table.plugins").inner_text()
    shown = page.locator('[data-field="bundle-hash"]').inner_text()
    used = {JobStore().get(job).details["bundle_hash"] for job in (jobs.ok, jobs.failing)}
    assert shown in used, (shown, used)
    screenshot(page, "ui-plugins.png")

    # readable on a phone: no page is wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/ui/jobs", f"/ui/jobs/{jobs.ok}", "/ui/models", "/ui/plugins"):
        page.goto(server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide on a 390 px screen"
