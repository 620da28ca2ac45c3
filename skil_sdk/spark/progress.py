"""Driver-side progress: tasks from Spark's status tracker, posted to the server."""

from __future__ import annotations

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
    ) -> None:
        self._sc = spark_context
        self._group = job_group
        self._url = server_url
        self._token = token
        self._job_id = job_id
        self._rows_total = rows_total
        self._stats = stats
        self._interval = interval
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

    def report_once(self) -> None:
        """Post the current progress; network errors are ignored (progress is advisory)."""
        if not self._url:
            return
        try:
            done, total = self.tasks()
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
