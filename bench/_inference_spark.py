"""Spark-side helpers of ``bench/inference.py``: stage and SQL metrics from the Spark UI.

Used inside the benchmark's Spark drivers (the ``predict_batch_udf`` script and the
in-session ``skil-sdk`` runs) right after a write action, while the application's UI
is still up. Only the standard REST API of the Spark UI is read.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

#: SQL metrics worth keeping (the Python and Arrow nodes, the scan and the writer).
_SQL_NODES = ("ArrowEvalPython", "MapInArrow", "PythonMapInArrow", "Scan", "Execute", "Write")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _api(spark: Any) -> str | None:
    sc = spark.sparkContext
    base = sc.uiWebUrl
    return f"{base}/api/v1/applications/{sc.applicationId}" if base else None


def last_stage_id(spark: Any) -> int:
    """The highest stage id so far (-1 when none, or when the UI does not answer)."""
    api = _api(spark)
    if api is None:
        return -1
    try:
        stages = _get(f"{api}/stages")
    except (OSError, ValueError):
        return -1
    return max((s["stageId"] for s in stages), default=-1)


def last_job_metrics(spark: Any, after_stage: int) -> dict[str, Any]:
    """Task metrics of the busiest stage after ``after_stage`` (the write),
    and the SQL metrics of the last query with a Python node.

    Returns an empty dict when the UI is off or does not answer.
    """
    api = _api(spark)
    if api is None:
        return {}
    try:
        time.sleep(1.0)  # the UI's listener catches up with the job's end
        stages = [s for s in _get(f"{api}/stages?status=complete") if s["stageId"] > after_stage]
        if not stages:
            return {}
        stage = max(stages, key=lambda s: s.get("executorRunTime", 0))
        tasks = _get(f"{api}/stages/{stage['stageId']}/{stage['attemptId']}/taskList?length=10000")
        sql = _get(f"{api}/sql?details=true&planDescription=false&length=1000")
    except (OSError, ValueError, KeyError):
        return {}
    durations = sorted((t["launchTime"], t["duration"]) for t in tasks if "duration" in t)
    metrics = [t.get("taskMetrics", {}) for t in tasks]
    nodes: list[dict[str, Any]] = []
    python_runs = [
        e for e in sql if any(n in str(e.get("nodes", "")) for n in ("ArrowEvalPython", "InArrow"))
    ]
    if python_runs:
        execution = max(python_runs, key=lambda e: e["id"])
        for node in execution.get("nodes", []):
            if any(key in node.get("nodeName", "") for key in _SQL_NODES):
                nodes.append(
                    {
                        "node": node["nodeName"],
                        "metrics": {m["name"]: m["value"] for m in node.get("metrics", [])},
                    }
                )
    return {
        "stage_id": stage["stageId"],
        "tasks": stage["numTasks"],
        "task_ms_in_launch_order": [d for _launch, d in durations],
        "executor_run_ms": sum(m.get("executorRunTime", 0) for m in metrics),
        "executor_cpu_ms": round(sum(m.get("executorCpuTime", 0) for m in metrics) / 1e6),
        "executor_deserialize_ms": sum(m.get("executorDeserializeTime", 0) for m in metrics),
        "jvm_gc_ms": sum(m.get("jvmGcTime", 0) for m in metrics),
        "sql_nodes": nodes,
    }
