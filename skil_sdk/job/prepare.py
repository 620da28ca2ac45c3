"""``prepare``: a user's request checked and turned into a :class:`JobSpec`, before Spark.

Every entry point (``skil-sdk infer``, ``skil-sdk evaluate``, ``SkilContext``) prepares
its job here, so a job runs with the same settings whichever way it was asked for.
Everything that can be refused on the submitting machine is refused here: before a
JVM starts, before the bundle is built or looked up, and before a job record exists.
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path
from typing import Any

from skil_sdk.errors import (
    ConflictError,
    InvalidValueError,
    NotFoundError,
    SkilError,
    SparkError,
)
from skil_sdk.job.request import InferenceRequest
from skil_sdk.job.spec import (
    EVALUATE,
    INFERENCE,
    JOB_KINDS,
    OVERWRITE_FORCE,
    OVERWRITE_NO,
    JobSpec,
    ModelRef,
    ProviderRef,
    overwrite_mode,
)
from skil_sdk.uris import is_local, local_path

EXECUTION_PROVIDERS = ("cpu", "cuda")
#: Seconds to wait for a ``spark://`` master to accept a connection.
MASTER_PROBE_SECONDS = 5.0


def prepare(request: InferenceRequest, *, in_session: bool = False) -> JobSpec:
    """The checked, frozen spec of ``request`` (its profile, or the default one, applied).

    ``in_session`` is for jobs run inside an existing SparkSession: their executors
    run that session's Python, so no bundle (and no published plugin) is needed, and
    the session's master is not probed.
    """
    from skil_sdk.profiles import apply_profile
    from skil_sdk.store.models import get_model

    request = apply_profile(request, request.profile)
    if request.kind not in JOB_KINDS:
        raise InvalidValueError(f"A job's kind is inference or evaluate, not {request.kind!r}.")
    args = request.spark_args
    check_spark_args(request)
    overwrite = overwrite_mode(request.overwrite)
    batch_size = request.batch_size if request.batch_size is not None else args.batch_size
    if batch_size < 1:
        raise InvalidValueError(f"batch_size must be at least 1, not {batch_size}; e.g. 1024.")
    if request.rows_per_task is not None and request.rows_per_task < 1:
        raise InvalidValueError(
            f"rows_per_task must be at least 1, not {request.rows_per_task}; e.g. 100000."
        )
    if request.execution_provider not in EXECUTION_PROVIDERS:
        raise InvalidValueError(
            f"execution provider must be one of {', '.join(EXECUTION_PROVIDERS)}, not "
            f"{request.execution_provider!r}."
        )
    budget = _budget(request)
    evaluation = _evaluation(request)
    plugins = tuple(str(p) for p in request.plugins)
    _check_plugin_projects(plugins)
    if request.kind == INFERENCE:
        if not request.output:
            raise InvalidValueError("A batch-inference job needs an output path; pass --output.")
        check_output_directory(request.output, overwrite)
    elif request.output:
        check_output_file(request.output, overwrite)
    model = get_model(request.model_id)
    # the model's recorded shapes (an MLflow signature's) are defaults; --input-shape wins
    defaults = dict(getattr(model, "input_shapes", None) or {})
    input_shapes = check_input_shapes(model.signature, {**defaults, **request.input_shapes})
    provider, options = _provider(request, plugins, in_session)
    if request.postprocess:
        from skil_sdk.plugins import get_postprocessor

        get_postprocessor(request.postprocess)
    engine = choose_engine(request, provider, in_session)
    if engine == "spark" and not in_session:
        _check_bundle_holds(request.provider, provider, plugins)
    recorded = _recorded_spark_args(args, request.kind, evaluation)
    if not in_session and engine == "spark":
        from skil_sdk.spark.sparkhome import find_spark_home

        find_spark_home(request.spark_home)
        probe_master(args.master)
    job = JobSpec(
        kind=request.kind,
        model=ModelRef(model.id, model.sha256, model.signature),
        provider=provider,
        provider_options=options,
        output=request.output,
        overwrite=overwrite,
        batch_size=int(batch_size),
        spark_args=recorded,
        keep_columns=tuple(request.keep_columns),
        postprocess=request.postprocess,
        postprocess_options=dict(request.postprocess_options),
        plugins=plugins,
        advertise_host=request.advertise_host,
        execution_provider=request.execution_provider,
        spark_home=request.spark_home,
        profile=request.profile,
        evaluation=evaluation,
        input_shapes=input_shapes,
        engine=engine,
        rows_per_task=request.rows_per_task,
        max_bad_rows=budget.text,
    )
    if engine == "spark":
        from skil_sdk.spark.request import advertise_host

        advertise_host(job)  # it must resolve here
    return job


def _budget(request: InferenceRequest) -> Any:
    """The request's error budget, checked: bad rows are quarantined by the per-task
    commit, which local (or mounted) outputs have; evaluations write no rows."""
    from skil_sdk.job.budget import ErrorBudget
    from skil_sdk.uris import is_local

    budget = ErrorBudget.parse(request.max_bad_rows)
    if budget.text == "0":
        return budget
    if request.kind != INFERENCE:
        raise InvalidValueError(
            "--max-bad-rows applies to batch inference; an evaluation's bad row fails it, "
            "named by its id."
        )
    if request.output and not is_local(request.output):
        raise InvalidValueError(
            f"--max-bad-rows quarantines rows beside a local or mounted output, and "
            f"{request.output} is written through Spark's file systems; write to a local or "
            "shared path, or drop --max-bad-rows."
        )
    return budget


def choose_engine(request: InferenceRequest, provider: ProviderRef, in_session: bool) -> str:
    """``spark`` or ``local``: what ``--engine`` asks for, checked (``auto`` picks local
    for a local master and a provider that reads on the executors)."""
    wanted = request.engine or "auto"
    if wanted not in ("auto", "local", "spark"):
        raise InvalidValueError(f"engine must be auto, local or spark, not {wanted!r}.")
    if in_session and wanted == "local":
        raise InvalidValueError(
            "A job in a SparkSession runs on Spark; drop engine='local' or the session."
        )
    if wanted == "spark" or in_session:
        return "spark"
    reasons = local_engine_refusals(request, provider)
    if wanted == "auto":
        return "spark" if reasons else "local"
    if reasons:
        raise InvalidValueError(f"--engine local cannot run this job: {reasons[0]}.")
    return "local"


#: Remote input schemes the local engine reads (pyarrow's S3 file system; its workers are
#: spawned, not forked, for them).
LOCAL_ENGINE_SCHEMES = ("s3://", "s3a://")


def local_engine_refusals(request: InferenceRequest, provider: ProviderRef) -> list[str]:
    """Why a job cannot run on the local engine (empty when it can)."""
    reasons = []
    if request.spark_args.master_kind != "local":
        reasons.append(
            f"the master {request.spark_args.master} is a cluster; the local engine runs on "
            "local masters (local, local[N], local[*]); use --engine spark"
        )
    if not provider.resolved or not _reads_on_executors(provider):
        reasons.append(
            f"the {provider.name} provider returns Spark data (a DataFrame or an RDD), or is "
            "not installed here; the local engine runs providers that read on the executors "
            "(parquet, numpy, mnist, images); use --engine spark"
        )
    if request.output and not is_local(request.output):
        reasons.append(
            f"the output {request.output} is not on this machine's file system; use --engine "
            "spark for remote outputs"
        )
    if request.keep_columns:
        reasons.append("--keep-column needs a DataFrame provider; use --engine spark")
    if request.execution_provider != "cpu":
        reasons.append(
            f"--execution-provider {request.execution_provider} runs on the Spark engine's GPU "
            "bundle; use --engine spark"
        )
    remote = [
        v
        for k, v in request.provider_options.items()
        if k in ("path", "labels") and not is_local(v) and not v.startswith(LOCAL_ENGINE_SCHEMES)
    ]
    if remote:
        reasons.append(
            f"the input {remote[0]} is on a file system the local engine does not read (it "
            "reads local paths, s3:// and s3a://); use --engine spark"
        )
    return reasons


def _reads_on_executors(provider: ProviderRef) -> bool:
    from skil_sdk.plugins import get_provider

    try:
        return bool(get_provider(provider.lookup).cls.READS_ON_EXECUTORS)
    except SkilError:
        return False


def check_input_shapes(signature: Any, given: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """``--input-shape`` values checked against the model's inputs: a known input, positive
    dims, the input's rank, and its fixed dims kept."""
    from skil_sdk.inference.signature import format_shape

    inputs = {i["name"]: i for i in signature["inputs"]}
    checked: dict[str, tuple[int, ...]] = {}
    for name, dims in given.items():
        if name not in inputs:
            raise InvalidValueError(
                f"--input-shape names {name!r}, which is not an input of the model (its inputs: "
                f"{', '.join(inputs)})."
            )
        shape = tuple(int(d) for d in dims)
        if not shape or any(d < 1 for d in shape):
            raise InvalidValueError(
                f"--input-shape {name}={','.join(map(str, dims))} needs positive dims, e.g. "
                f"{name}=3,224,224."
            )
        model_shape = inputs[name].get("shape")
        if model_shape is not None:
            row = list(model_shape[1:])
            if len(row) != len(shape):
                raise InvalidValueError(
                    f"Input {name!r} is {format_shape(model_shape)}, so each row has "
                    f"{len(row)} dims; --input-shape {name}={','.join(map(str, shape))} gives "
                    f"{len(shape)}."
                )
            for position, (fixed, wanted) in enumerate(zip(row, shape, strict=True), 1):
                if isinstance(fixed, int) and fixed != wanted:
                    raise InvalidValueError(
                        f"--input-shape {name}={','.join(map(str, shape))} contradicts the "
                        f"model's fixed dim {fixed} at position {position} of "
                        f"{format_shape(model_shape)}; keep {fixed} there."
                    )
        checked[name] = shape
    return checked


#: SparkArgs fields a local-engine job uses (or that only say what the job is).
_LOCAL_ENGINE_FIELDS = frozenset(
    {"master", "batch_size", "do_inference", "eval_type", "mode", "name", "output_path",
     "data_set_provider", "model_path", "conf"}
)


def local_engine_ignores(request: InferenceRequest, job: JobSpec) -> list[str]:
    """The Spark settings a request gave a job that runs on the local engine, which does
    not use them (``--executor-memory``, ``--conf KEY``...), for a warning; a profile's
    settings are not named (a profile serves Spark jobs too). Empty for a Spark job."""
    from skil_sdk.spark.args import SparkArgs

    if job.engine != "local":
        return []
    given = request.spark_args.to_dict()
    defaults = SparkArgs().to_dict()
    ignored = [
        "--" + key.replace("_", "-")
        for key, value in given.items()
        if key not in _LOCAL_ENGINE_FIELDS and value != defaults.get(key)
    ]
    ignored += [f"--conf {key}" for key in sorted(given.get("conf") or {})]
    if request.spark_home:
        ignored.append("--spark-home")
    if request.advertise_host:
        ignored.append("--advertise-host")
    return ignored


def local_engine_warning(request: InferenceRequest, job: JobSpec) -> str | None:
    """One sentence on the Spark settings a local-engine job ignores (None: there are none)."""
    ignored = local_engine_ignores(request, job)
    if not ignored:
        return None
    return (
        f"The local engine runs no JVM and ignores {', '.join(ignored)}; pass --engine spark "
        "to run the job on Spark with them."
    )


def _recorded_spark_args(args: Any, kind: str, evaluation: dict[str, Any] | None) -> Any:
    """SparkArgs as the job records them: SKIL's job fields say what the job does."""
    from skil_sdk.spark.args import SparkArgs

    recorded = args.to_dict()
    recorded["do_inference"] = True  # an inference or an evaluation: never a training job
    if evaluation is not None:
        recorded["eval_type"] = evaluation["eval_type"]
    SparkArgs.from_dict(recorded).validate()
    return recorded


def check_spark_args(request: InferenceRequest) -> None:
    """Refuse SparkArgs a job (or a session) cannot be submitted with: invalid values,
    cluster deploy mode, kill/status, fields that contradict the request."""
    args = request.spark_args
    args.validate()
    if args.deploy_mode == "cluster":
        raise InvalidValueError(
            "skil-sdk runs the job's driver on this machine (it serves the model and tracks "
            "the job); use --deploy-mode client."
        )
    if args.kill or args.status:
        raise InvalidValueError(
            "kill and status ask spark-submit about another application; run "
            "`spark-submit --kill ID` or `--status ID` directly, or `skil-sdk jobs kill JOB`."
        )
    for field_name, given, own in (
        ("output_path", args.output_path, request.output),
        ("data_set_provider", args.data_set_provider, request.provider),
    ):
        if given and own and given != own:
            raise InvalidValueError(
                f"SparkArgs.{field_name} is {given!r} but the job names {own!r}; give one."
            )


def _evaluation(request: InferenceRequest) -> dict[str, Any] | None:
    if request.kind != EVALUATE:
        return None
    from skil_sdk.evaluation.metrics import EvaluationSettings

    return EvaluationSettings.from_dict(dict(request.evaluation)).to_dict()


def _check_plugin_projects(plugins: tuple[str, ...]) -> None:
    for project in plugins:
        if not (Path(project) / "pyproject.toml").exists():
            raise InvalidValueError(
                f"--plugin {project} is not a provider project (no pyproject.toml); pass the "
                "directory `skil-sdk new provider` created."
            )


def _provider(
    request: InferenceRequest, plugins: tuple[str, ...], in_session: bool
) -> tuple[ProviderRef, dict[str, str]]:
    """The provider resolved here, and its options checked against its ``OPTIONS``."""
    from skil_sdk.plugins import get_provider
    from skil_sdk.providers.options import resolve_options

    by_path = ":" in request.provider
    try:
        info = get_provider(request.provider)
    except NotFoundError:
        if not in_session and bundle_may_hold(request.provider, plugins):
            # A published plugin (or a --plugin project) that is not installed here: the
            # driver, inside the bundle that holds it, checks the provider and its options.
            ref = ProviderRef(
                request.provider,
                class_path=request.provider if by_path else None,
                resolved=False,
                by_path=by_path,
            )
            return ref, dict(request.provider_options)
        if by_path:
            raise
        raise _unknown_provider(request.provider, plugins) from None
    local = request.spark_args.master_kind == "local"
    options = resolve_options(
        info.name, info.options, request.provider_options, check_paths=local or in_session
    )
    ref = ProviderRef(
        info.name, info.class_path, info.plugin, info.package, info.version, by_path=by_path
    )
    return ref, options


def bundle_may_hold(provider: str, plugins: tuple[str, ...]) -> bool:
    """Whether the job's bundle may hold a provider this machine cannot import.

    It does when the name is a plugin's (entry-point) name, or when a published plugin or
    a ``--plugin`` project is not installed here, so its providers cannot be listed.
    """
    from importlib import metadata

    from skil_sdk.store.plugins import current_plugins

    if provider in bundle_plugin_names(plugins):
        return True
    names = [p.name for p in current_plugins()]
    names += [n for n in (_project_name(Path(p)) for p in plugins) if n]
    for name in names:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return True
    return False


def _is_plugin_package(package: str | None) -> bool:
    """Whether the installed distribution ``package`` declares skil_sdk entry points."""
    from importlib import metadata

    if not package or package == "unknown":
        return False
    try:
        entry_points = metadata.distribution(package).entry_points
    except metadata.PackageNotFoundError:
        return False
    return any(ep.group == "skil_sdk" for ep in entry_points)


def bundle_plugin_names(plugins: tuple[str, ...]) -> set[str]:
    """The plugin (entry-point) names the job's bundle holds: published plugins and the
    ``--plugin`` projects. A scaffolded plugin's provider has its plugin's name."""
    from skil_sdk.store.plugins import current_plugins

    names = {name for plugin in current_plugins() for name in plugin.entry_points}
    for project in plugins:
        names |= _project_entry_points(Path(project))
    return names


def _unknown_provider(name: str, plugins: tuple[str, ...]) -> NotFoundError:
    from skil_sdk.plugins import list_providers
    from skil_sdk.providers.options import did_you_mean

    known = sorted({i.name for i in list_providers()} | bundle_plugin_names(plugins))
    return NotFoundError(
        f"No provider named {name!r}{did_you_mean(name, known)} (available: "
        f"{', '.join(known) or 'none'}); install and publish the plugin that provides it, or "
        "pass its project with --plugin."
    )


def _check_bundle_holds(name: str, provider: ProviderRef, plugins: tuple[str, ...]) -> None:
    """A Spark job's bundle holds only published plugins (the local engine needs no
    bundle): an installed plugin's provider must be published or given as a project."""
    from skil_sdk.plugins import BUILTIN_PLUGIN

    if (
        provider.resolved
        and provider.plugin != BUILTIN_PLUGIN
        and _is_plugin_package(provider.package)
    ):
        _check_published(name, provider.package or "", plugins)


def _check_published(provider: str, package: str, plugins: tuple[str, ...]) -> None:
    """A plugin's provider runs from the bundle: its package must be published or given."""
    from packaging.utils import canonicalize_name

    from skil_sdk.store.plugins import current_plugins

    wanted = canonicalize_name(package)
    if any(canonicalize_name(p.name) == wanted for p in current_plugins()):
        return
    if any(_project_name(Path(p)) == wanted for p in plugins):
        return
    raise NotFoundError(
        f"The provider {provider!r} comes from the package {package!r}, which is installed "
        f"here but not published, so the job's bundle would not hold it; run `skil-sdk "
        f"publish PROJECT_DIR` for that package, or pass --plugin PROJECT_DIR."
    )


def _pyproject(project: Path) -> dict[str, Any]:
    try:
        return tomllib.loads((project / "pyproject.toml").read_text()).get("project") or {}
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _project_name(project: Path) -> str | None:
    from packaging.utils import canonicalize_name

    name = _pyproject(project).get("name")
    return canonicalize_name(name) if isinstance(name, str) else None


def _project_entry_points(project: Path) -> set[str]:
    group = (_pyproject(project).get("entry-points") or {}).get("skil_sdk") or {}
    return set(group) if isinstance(group, dict) else set()


def _existing_output(output: str, overwrite: str) -> Path | None:
    """The local output path when it exists and what is there must be checked; None when
    it is remote (the driver checks), absent, or ``overwrite`` is ``force``."""
    if not is_local(output):
        return None
    path = local_path(output)
    if not path.exists() and not path.is_symlink():
        return None
    if overwrite == OVERWRITE_NO:
        kept = _kept_by(path)
        if kept is not None:
            raise ConflictError(
                f"The output path {output} holds what job {kept} kept when it stopped (its "
                f"plan and committed tasks); continue it with `skil-sdk jobs resume {kept}`, or "
                "pass --overwrite to start again."
            )
        raise ConflictError(
            f"The output path {output} already exists; choose another or pass --overwrite."
        )
    return None if overwrite == OVERWRITE_FORCE else path


def _kept_by(path: Path) -> str | None:
    """The job whose committed tasks wait at ``path`` for resume (None: none)."""
    from skil_sdk.commit import LocalCommitter

    plan = LocalCommitter(path).read_plan() if path.is_dir() else None
    return str(plan["job_id"]) if plan and plan.get("job_id") else None


def check_output_directory(output: str, overwrite: str) -> None:
    """The output rule for a Parquet directory on this machine (remote paths: the driver).

    An existing path is refused unless ``overwrite`` is ``yes`` and it is an earlier
    skil-sdk output (it has ``_skil_job.json``), an empty directory or only Spark's
    leftovers of an incomplete write; ``force`` replaces whatever is there.
    """
    path = _existing_output(output, overwrite)
    if path is None:
        return
    if not path.is_dir():
        raise ConflictError(
            f"The output path {output} is a file, not an earlier skil-sdk output; choose "
            "another path, or pass --overwrite=force to replace it."
        )
    foreign = foreign_entries(sorted(p.name for p in path.iterdir()))
    if foreign:
        raise ConflictError(
            f"The output path {output} holds {_entries(len(foreign))} that {_be(len(foreign))} "
            f"not a skil-sdk output (such as {foreign[0]!r}); choose another path, or pass "
            "--overwrite=force to delete them."
        )


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def _be(count: int) -> str:
    return "is" if count == 1 else "are"


def foreign_entries(names: list[str]) -> list[str]:
    """The names in an output directory that no skil-sdk (Spark) output would hold.

    A directory with ``_skil_job.json`` is an earlier skil-sdk output: nothing in it is
    foreign. Otherwise only what an incomplete Spark write leaves is allowed: part files,
    ``_``-prefixed entries (``_temporary``, ``__magic``, ``_SUCCESS``) and hidden files.
    """
    if "_skil_job.json" in names:
        return []
    return [n for n in names if not n.startswith(("_", ".", "part-"))]


def check_output_file(output: str, overwrite: str) -> None:
    """The output rule for an evaluation's metrics file on this machine."""
    path = _existing_output(output, overwrite)
    if path is None:
        return
    if not path.is_file() or not _is_metrics_file(path):
        raise ConflictError(
            f"The output path {output} is not an earlier skil-sdk metrics file; choose another "
            "path, or pass --overwrite=force to replace it."
        )


def _is_metrics_file(path: Path) -> bool:
    try:
        return is_metrics_document(path.read_text())
    except OSError:
        return False


def is_metrics_document(text: str) -> bool:
    """Whether ``text`` is a metrics file an evaluation wrote (JSON with a ``job`` object)."""
    import json

    try:
        document = json.loads(text)
    except ValueError:
        return False
    return isinstance(document, dict) and isinstance(document.get("job"), dict)


def probe_master(master: str) -> None:
    """Refuse a ``spark://`` master that does not accept a TCP connection (every HA host).

    A dead master would otherwise fail only after Spark's own retries (about a minute).
    Other masters (local, YARN, Kubernetes) are left to spark-submit.
    """
    if not master.startswith("spark://"):
        return
    errors = []
    for address in master[len("spark://") :].split(","):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), MASTER_PROBE_SECONDS):
                return
        except OSError as exc:
            errors.append(f"{address}: {exc.strerror or exc}")
    raise SparkError(
        f"The Spark master {master} did not answer ({'; '.join(errors)}); check the URL and "
        "that the master is running (its web page, port 8080 by default, lists the URL)."
    )
