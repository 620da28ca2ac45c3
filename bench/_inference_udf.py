"""Case (b) of ``bench/inference.py``: ``predict_batch_udf`` with onnxruntime, Parquet in and out.

Started by ``spark-submit`` (so Spark's start counts as it does for ``skil-sdk infer``)::

    spark-submit --master local[2] bench/_inference_udf.py DATA MODEL OUT BATCH RESULT_JSON \
        [WIDTH [PASSES]]

Runs the same query twice in one session (``PASSES``, default 2): the first pass is the
cold one (its ``_SUCCESS`` ends the end-to-end time), the second, with warm Python
workers and the model loaded, gives the steady state. ``WIDTH`` is the length of the
``features`` vectors (default 784). Writes wall-clock timestamps to RESULT_JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def make_predict_fn(model: str) -> Any:
    """A ``make_predict_fn`` for ``predict_batch_udf``: one onnxruntime session, 1 thread."""

    def make() -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name

        def predict(inputs: Any) -> Any:
            return session.run(None, {name: inputs})[0]

        return predict

    return make


def main() -> None:
    """Two passes of ``id, predict(features)`` from Parquet to Parquet."""
    data, model, out, batch, result_path = sys.argv[1:6]
    width = int(sys.argv[6]) if len(sys.argv) > 6 else 784
    passes = int(sys.argv[7]) if len(sys.argv) > 7 else 2
    if passes not in (1, 2):
        raise SystemExit(f"PASSES is 1 (cold) or 2 (cold, then steady), not {passes}")
    names = ("cold", "steady")[:passes]
    started = time.time()
    from _inference_spark import last_job_metrics, last_stage_id
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import SparkSession
    from pyspark.sql.types import ArrayType, FloatType

    spark = SparkSession.builder.appName("bench predict_batch_udf").getOrCreate()
    session_ready = time.time()
    predict = predict_batch_udf(
        make_predict_fn(model),
        return_type=ArrayType(FloatType()),
        batch_size=int(batch),
        input_tensor_shapes=[[width]],
    )
    passes: list[dict[str, Any]] = []
    for name in names:
        frame = spark.read.parquet(data)
        stage = last_stage_id(spark)
        begin = time.time()
        frame.select("id", predict("features").alias("output")).write.parquet(f"{out}/{name}")
        end = time.time()
        passes.append(
            {
                "pass": name,
                "started_at": begin,
                "finished_at": end,
                "spark": last_job_metrics(spark, stage),
            }
        )
    rows = spark.read.parquet(f"{out}/{names[-1]}").count()
    result = {
        "script_started_at": started,
        "session_ready_at": session_ready,
        "rows": rows,
        "partitions": frame.rdd.getNumPartitions(),
        "passes": passes,
        "spark_version": spark.version,
    }
    Path(result_path).write_text(json.dumps(result, indent=2))
    spark.stop()


if __name__ == "__main__":
    main()
