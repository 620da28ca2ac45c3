"""Driver-side progress: tasks from Spark's status tracker, posted to the server."""

from __future__ import annotations

import contextlib
import threading
from typing import Any


class ProgressReporter:
    """Posts ``tasks_done/tasks_total`` and rows done to the job's server every second."""

    def __init__(
        self,
        spark_context: Any,
        job_group: str,
        server_url: str | None,
        token: str,
        job_id: str,
        rows_total: int | None,
        stats: Any,
        interval: float = 1.0,
        budget: tuple[int, int] = (0, 0),
        tasks_kept: int = 0,
        resume_hint: str = "",
        first_error: Any = None,
    ) -> None:
        self._sc = spark_context
        self._group = job_group
        self._url = server_url
        self._token = token
        self._job_id = job_id
        self._rows_total = rows_total
        self._stats = stats
        self._interval = interval
        #: The job's budget of bad rows, and the rows an earlier run's kept tasks used.
        self._limit, self._kept_bad = budget
        self._tasks_kept = tasks_kept
        self._resume_hint = resume_hint
        #: ``(id, stage, error)`` of the committed tasks' first bad row, when no record says.
        self._first_error = first_error
        self._exceeded: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="skil-progress", daemon=True)

    def start(self) -> None:
        """Start reporting in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Report one last time and stop."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.report_once()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.report_once()

    def tasks(self) -> tuple[int, int]:
        """``(done, total)`` over the stages of this job's Spark jobs."""
        tracker = self._sc.statusTracker()
        done = total = 0
        for job_id in tracker.getJobIdsForGroup(self._group):
            job = tracker.getJobInfo(job_id)
            if job is None:
                continue
            for stage_id in job.stageIds:
                stage = tracker.getStageInfo(stage_id)
                if stage is not None:
                    done += stage.numCompletedTasks
                    total += stage.numTasks
        return done, total

    def check_budget(self) -> None:
        """Cancel the job once its committed tasks quarantined more rows than its budget
        (each task stops itself at the budget; this adds them up)."""
        from skil_sdk.inference.quarantine import over_budget

        records = list((self._stats.value or {}).values())
        bad = self._kept_bad + sum(int(r.get("rows_quarantined", 0)) for r in records)
        if bad <= self._limit or self._exceeded is not None:
            return
        first = next((r["first_bad"] for r in records if r.get("first_bad")), None)
        if first is None and self._first_error is not None:
            with contextlib.suppress(Exception):  # a read error must not hide the job's
                first = self._first_error()
        first_id, stage, error = first or (None, "?", "unknown")
        self._exceeded = over_budget(bad, self._limit, first_id, stage, error, self._resume_hint)
        self._sc.cancelJobGroup(self._group)

    def over_budget(self) -> Any:
        """The error of a job cancelled past its budget of bad rows (None: it was not)."""
        self.check_budget()
        return self._exceeded

    def report_once(self) -> None:
        """Post the current progress; network errors are ignored (progress is advisory)."""
        with contextlib.suppress(Exception):
            self.check_budget()
        if not self._url:
            return
        try:
            done, total = self.tasks()
            done += self._tasks_kept
            total += self._tasks_kept
            rows = sum(r["rows"] for r in (self._stats.value or {}).values())
            import httpx

            httpx.post(
                f"{self._url}/jobs/{self._job_id}/progress",
                json={
                    "rows_done": rows,
                    "tasks_done": done,
                    "tasks_total": total or None,
                    "rows_total": self._rows_total,
                },
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=5,
            )
        except Exception:
            return
