"""Case (c) steady state of ``bench/inference.py``: ``skil-sdk`` jobs in one SparkSession.

Run as ``python bench/_inference_session.py PLAN_JSON``. The plan names the bundle,
the node cache, the model id and a list of jobs (data, batch size, output); the jobs
run one after another through ``submit(request, spark=spark)`` in one ``local[2]``
session whose Python workers run inside the bundle, exactly as ``skil-sdk infer``
starts them. The first job is the warm-up. Each job's ``_skil_job.json`` timings and
the Spark metrics of its write go to the plan's result file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    """Run the plan's jobs in one session and write their timings."""
    plan = json.loads(Path(sys.argv[1]).read_text())
    bundle = plan["bundle"]
    node_cache = plan["node_cache"]
    os.environ["SKIL_NODE_CACHE"] = node_cache
    os.environ["PEX_ROOT"] = f"{node_cache}/pex"
    os.environ["PYSPARK_PYTHON"] = bundle
    started = time.time()
    from _inference_spark import last_job_metrics, last_stage_id
    from pyspark.sql import SparkSession

    from skil_sdk.spark.args import SparkArgs
    from skil_sdk.spark.submit import InferenceRequest, submit

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("bench skil-sdk in session")
        .config("spark.pyspark.python", bundle)
        .config("spark.executorEnv.PEX_ROOT", f"{node_cache}/pex")
        .config("spark.executorEnv.SKIL_NODE_CACHE", node_cache)
        .config("spark.executorEnv.PEX_MULTIPROCESSING_START_METHOD", "spawn")
        .config("spark.python.worker.reuse", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session_ready = time.time()
    jobs: list[dict[str, Any]] = []
    for job in plan["jobs"]:
        request = InferenceRequest(
            model_id=plan["model_id"],
            provider="parquet",
            output=job["output"],
            spark_args=SparkArgs(master="local[2]"),
            batch_size=int(job["batch_size"]),
            provider_options={"path": job["data"], "id": "id", "features": "features"},
        )
        stage = last_stage_id(spark)
        begin = time.time()
        result = submit(request, spark=spark)
        end = time.time()
        record = json.loads((Path(job["output"]) / "_skil_job.json").read_text())
        jobs.append(
            {
                **job,
                "rows": result.rows,
                "started_at": begin,
                "finished_at": end,
                "timings": record["timings"],
                "executors": record.get("executors", []),
                "spark": last_job_metrics(spark, stage),
            }
        )
        print(
            f"  {job['name']}: {result.rows} rows, write {record['timings']['compute_seconds']} s",
            file=sys.stderr,
        )
    Path(plan["result"]).write_text(
        json.dumps(
            {"started_at": started, "session_ready_at": session_ready, "jobs": jobs}, indent=2
        )
    )
    spark.stop()


if __name__ == "__main__":
    main()
