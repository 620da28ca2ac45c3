"""The jobs, job, models and plugins pages in a real browser, over real Spark jobs.

A failed job (a model that wants 4 features, a provider that gives 1) shows its error; a
small job's progress bar advances live to 100 % and its page shows executors and output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import _model_fixtures as models
import pytest
from _ui_helpers import login, screenshot, skil, wait_for

from skil_sdk.server.embedded import EmbeddedServer
from skil_sdk.store.models import add_model

pytestmark = pytest.mark.slow

ROW_STATE = """(id) => {
  const row = document.querySelector(`tr[data-job="${id}"]`);
  if (!row) return null;
  return [row.querySelector('[data-field="state"]').textContent,
          Number(row.querySelector('[data-field="progress"]').getAttribute('aria-valuenow'))];
}"""


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


def test_a_failed_job_shows_its_error(
    bundle_home: Path, tmp_path: Path, page: Any, ui_server: EmbeddedServer
) -> None:
    model = add_model(models.small_mlp_model(tmp_path), "ui-tests", name="four-features")
    job_id = start_job(model.id, tmp_path / "out", 30)
    login(page, ui_server)
    page.goto(f"{ui_server.url}/ui/jobs/{job_id}")
    # the page follows the job live and shows the error once it fails
    page.locator(".error-card").wait_for(timeout=180_000)
    assert page.locator('.summary [data-field="state"]').inner_text() == "FAILED"
    error = page.locator('[data-field="error"]').inner_text()
    assert error.strip(), "the error is shown"
    assert page.locator("pre.log").count() == 1
    screenshot(page, "ui-job-failed.png")


def test_a_job_advances_to_100_percent_live_and_its_page_shows_executors(
    bundle_home: Path, built_bundle: Any, tmp_path: Path, page: Any, ui_server: EmbeddedServer
) -> None:
    model = add_model(models.mlp_model(tmp_path, (1, 3, 2)), "ui-tests", name="squares-mlp")
    output = tmp_path / "out"
    job_id = start_job(model.id, output, 4000, "--conf", "spark.default.parallelism=8")
    login(page, ui_server)
    page.goto(ui_server.url + "/ui/jobs")
    page.evaluate("window.__samePage = true")
    seen: list[tuple[str, float]] = []

    def finished() -> bool:
        value = page.evaluate(ROW_STATE, job_id)
        if value and (not seen or tuple(value) != seen[-1]):
            seen.append((value[0], value[1]))
        return bool(value) and value[0] in ("SUCCEEDED", "FAILED", "KILLED")

    wait_for(finished, 240, f"job {job_id} to finish on /ui/jobs")
    assert seen[-1] == ("SUCCEEDED", 100.0), seen
    assert seen[0][1] < 100 and seen[0][0] in ("SUBMITTED", "RUNNING"), seen
    percents = [p for _state, p in seen]
    assert percents == sorted(percents), f"the bar only moves forward: {seen}"
    assert page.evaluate("window.__samePage === true"), "updated live, without a reload"
    screenshot(page, "ui-jobs.png")

    page.click(f'a[href="/ui/jobs/{job_id}"]')
    page.wait_for_url(f"**/ui/jobs/{job_id}")
    assert page.locator('.summary [data-field="state"]').inner_text() == "SUCCEEDED"
    assert page.locator('[data-field="output"]').inner_text() == str(output)
    executors = page.locator("table.executors tbody tr")
    assert executors.count() >= 1
    first = executors.first.inner_text()
    assert built_bundle.hash[:12] in first, first
    assert page.locator("svg.chart").count() == 1
    assert (
        "spark.default.parallelism"
        in page.locator("section.card", has_text="Spark arguments").inner_text()
    )
    screenshot(page, "ui-job.png")

    page.goto(f"{ui_server.url}/ui/models")
    card = page.locator(f'section.model[id="{model.id}"]')
    inputs = card.locator("table.inputs tbody tr").first.inner_text()
    assert "float32" in inputs and "[N, 1]" in inputs
    outputs = card.locator("table.outputs tbody tr").first.inner_text()
    assert "float32" in outputs and "[N, 2]" in outputs
    assert model.sha256 in card.inner_text() and "ui-tests" in card.inner_text()
    screenshot(page, "ui-models.png")

    page.goto(f"{ui_server.url}/ui/plugins")
    assert "squares" in page.locator("table.plugins").inner_text()
    bundle_hash = page.locator('[data-field="bundle-hash"]').inner_text()
    assert len(bundle_hash) >= 12 and all(c in "0123456789abcdef" for c in bundle_hash)
    screenshot(page, "ui-plugins.png")

    # readable on a phone: nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/ui/jobs", f"/ui/jobs/{job_id}", "/ui/models", "/ui/plugins"):
        page.goto(ui_server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide on a 390 px screen"
