"""``SkilContext``: the Python API of SKIL's ``SkilContext``, for notebooks and scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skil_sdk.errors import InvalidValueError
from skil_sdk.spark.args import SparkArgs


class SkilContext:
    """Entry point for adding models and running batch inference from Python.

    Example::

        from skil_sdk import SkilContext, SparkArgs

        ctx = SkilContext()
        model_id = ctx.add_model_to_experiment("model.onnx", "digits")
        job_id = ctx.batch_inference(
            SparkArgs(master="local[2]"), model_id, "parquet", "out/", path="data.parquet"
        )
    """

    def add_model_to_experiment(
        self, path: str | Path, experiment: str, name: str | None = None
    ) -> str:
        """Add an ONNX model to the model store under ``experiment``; return its id."""
        from skil_sdk.store.models import add_model

        return str(add_model(Path(path), experiment, name=name).id)

    def batch_inference(
        self,
        args: SparkArgs | None,
        model_id: str,
        provider: str,
        output_path: str,
        batch_size: int | None = None,
        *,
        overwrite: bool | str = False,
        keep_columns: list[str] | None = None,
        postprocess: str | None = None,
        postprocess_options: dict[str, Any] | None = None,
        plugins: list[str] | None = None,
        advertise_host: str | None = None,
        execution_provider: str = "cpu",
        profile: str | None = None,
        input_shapes: dict[str, Any] | None = None,
        engine: str | None = None,
        rows_per_task: int | None = None,
        max_bad_rows: str | int | None = None,
        detach: bool = False,
        spark: Any = None,
        provider_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> str:
        """Run ``model_id`` over ``provider``'s keyed data and write Parquet to ``output_path``.

        The job is prepared as ``skil-sdk infer`` prepares it: ``profile`` (by default
        the default profile of ``SKIL_HOME/config.toml``) fills what ``args`` leaves at
        its defaults, and the provider's options are checked before Spark starts.
        ``overwrite`` is False, True (replace an earlier skil-sdk output) or
        ``"force"``. ``input_shapes`` (``{"x": (3, 224, 224)}``) gives the per-row shape
        of inputs whose dims are dynamic, as ``--input-shape`` does; ``engine`` is
        ``spark``, ``local`` or ``auto`` (the default, unless the profile names one), as
        ``--engine``, and ``rows_per_task`` the
        target rows of a packed task, as ``--rows-per-task``. ``max_bad_rows`` (a count,
        or a share such as ``"0.1%"``) lets that many rows that cannot be fed to the model
        go to ``OUTPUT/_errors/`` instead of failing the job, as ``--max-bad-rows``. With
        ``spark`` (a SparkSession: a notebook's, or one from :meth:`spark_session`) the job runs in
        that session, as SKIL's ``batchInference(z, ...)`` did, on the Spark engine.
        Blocks until the job ends (unless ``detach``) and returns the job id; a failed job raises
        :class:`skil_sdk.errors.JobError`. The provider's options are the other keyword
        arguments and ``provider_options`` (for an option named like a parameter of this
        method, such as ``profile``); ``data(spark, **options)`` receives them as strings.
        """
        from skil_sdk.job.request import InferenceRequest
        from skil_sdk.spark.submit import submit

        request = InferenceRequest(
            model_id=model_id,
            provider=provider,
            output=str(output_path),
            spark_args=args or SparkArgs(),
            batch_size=batch_size,
            provider_options=_options(provider_options, options),
            overwrite=overwrite,
            keep_columns=list(keep_columns or []),
            postprocess=postprocess,
            postprocess_options={k: str(v) for k, v in (postprocess_options or {}).items()},
            plugins=[str(p) for p in plugins or []],
            advertise_host=advertise_host,
            execution_provider=execution_provider,
            profile=profile,
            input_shapes={k: [int(d) for d in v] for k, v in (input_shapes or {}).items()},
            engine=engine,
            rows_per_task=rows_per_task,
            max_bad_rows=max_bad_rows,
        )
        if spark is not None and detach:
            raise InvalidValueError(
                "A job in the caller's SparkSession runs in the foreground; drop detach=True."
            )
        return submit(request, detach=detach, spark=spark).job_id

    def resume(
        self, job_id: str, *, max_bad_rows: str | int | None = None, detach: bool = False
    ) -> str:
        """Continue a failed, killed or interrupted batch-inference job, as ``skil-sdk jobs
        resume``: its committed tasks are kept and only the others run. ``max_bad_rows``
        gives the tasks left a new budget of bad rows. Refused, naming what changed, when
        the model, the bundle, the provider or the input changed since the first run.
        Blocks until the job ends (unless ``detach``) and returns the job id."""
        from skil_sdk.job.resume import resume

        return str(resume(job_id, max_bad_rows=max_bad_rows, detach=detach).job_id)

    def evaluate(
        self,
        args: SparkArgs | None,
        model_id: str,
        provider: str,
        eval_type: str,
        label_column: str = "label",
        threshold: float = 0.5,
        output_path: str | None = None,
        *,
        batch_size: int | None = None,
        overwrite: bool | str = False,
        profile: str | None = None,
        engine: str | None = None,
        rows_per_task: int | None = None,
        spark: Any = None,
        provider_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Evaluate ``model_id`` on ``provider``'s labelled data; return the metrics.

        ``eval_type`` is one of ``evaluation``, ``evaluationbinary``, ``roc``,
        ``rocbinary``, ``rocmulticlass`` or ``regression`` (docs/evaluation.md lists each
        one's keys); the returned dict also holds the ``job_id``. With ``output_path`` the
        metrics are written there as JSON too. A failed job raises
        :class:`skil_sdk.errors.JobError`. ``profile``, ``engine``, ``rows_per_task``,
        ``spark`` and the provider's options work as for :meth:`batch_inference`.
        """
        from skil_sdk.evaluation.metrics import EvaluationSettings
        from skil_sdk.job.request import InferenceRequest
        from skil_sdk.spark.submit import submit

        settings = EvaluationSettings(eval_type, label_column, float(threshold))
        request = InferenceRequest(
            model_id=model_id,
            provider=provider,
            output=str(output_path or ""),
            spark_args=args or SparkArgs(),
            batch_size=batch_size,
            provider_options=_options(provider_options, options),
            overwrite=overwrite,
            profile=profile,
            kind="evaluate",
            evaluation=settings.to_dict(),
            engine=engine,
            rows_per_task=rows_per_task,
        )
        result = submit(request, spark=spark)
        return {**(result.metrics or {}), "job_id": result.job_id}

    def spark_session(
        self,
        args: SparkArgs | None = None,
        *,
        plugins: list[str] | None = None,
        execution_provider: str = "cpu",
        spark_home: str | None = None,
    ) -> Any:
        """A new SparkSession (``args``: master, memory, confs...) whose executors run the
        job bundle, for :meth:`batch_inference` and :meth:`evaluate` with ``spark=``.

        The bundle holds the published plugins and ``plugins`` (unpublished provider
        projects); it is built once and cached. Call it before any other SparkSession
        starts in this process (Spark reads its launch settings once). See
        docs/inference.md ("In a notebook's SparkSession").
        """
        from skil_sdk.spark.notebook import bundle_session

        return bundle_session(
            args or SparkArgs(),
            plugins=[str(p) for p in plugins or []],
            execution_provider=execution_provider,
            spark_home=spark_home,
        )

    def job(self, job_id: str) -> dict[str, Any]:
        """The job record of ``job_id`` as a dict."""
        from skil_sdk.store.jobs import JobStore

        return JobStore().get(job_id).to_dict()


def _options(explicit: dict[str, Any] | None, keywords: dict[str, Any]) -> dict[str, str]:
    """Provider options from ``provider_options=`` and the other keyword arguments."""
    return {str(k): str(v) for k, v in {**(explicit or {}), **keywords}.items()}
