"""SparkArgs: every field, the builder, validation messages, training refused, round trips.

Fast unit tests: no Spark is started.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from skil_sdk.errors import InvalidValueError
from skil_sdk.spark.args import (
    DEFAULT_BATCH_SIZE,
    FIELD_MAPPING,
    MASTER_KINDS,
    SKIL_DEFAULT_BATCH_SIZE,
    SKIL_DEFAULT_TOTAL_EXECUTOR_CORES,
    SKIL_DEFAULTS,
    TRAINING_REFUSED,
    SparkArgs,
    SparkArgsBuilder,
    skil_name,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "spark-args.md"

MASTERS: dict[str, str] = {
    "local": "local[2]",
    "standalone": "spark://127.0.0.1:7077",
    "yarn": "yarn",
    "k8s": "k8s://https://k8s.example.com:443",
    "mesos": "mesos://mesos.example.com:5050",
}

# Fields that need a partner to be valid on their own.
COMPANIONS: dict[str, dict[str, Any]] = {
    "principal": {"keytab": "/etc/security/etl.keytab"},
    "keytab": {"principal": "etl@EXAMPLE.COM"},
    "training_master_path": {"do_inference": True},
}

FIELDS = [f.name for f in dataclasses.fields(SparkArgs)]


def _kw(name: str, value: Any) -> dict[str, Any]:
    return {name: value}


def _one_sentence(message: str) -> None:
    assert message.endswith(".")
    body = re.sub(r"'[^']*'|\"[^\"]*\"|e\.g\.|\d+\.\d+", "", message[:-1])
    assert "." not in body, message


def _deploy_modes(kind: str) -> list[str]:
    # cluster mode is refused for local masters and (Python drivers) standalone ones.
    return ["client"] if kind in ("local", "standalone") else ["client", "cluster"]


def _sample(name: str) -> Any:
    if name == "mode":
        return "inference"
    example = FIELD_MAPPING[name].example
    default = getattr(SparkArgs(), name)
    if example != default:
        return example
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 3
    return example + "-2"


# --- every field -----------------------------------------------------------------------


def test_field_mapping_covers_every_field_exactly() -> None:
    assert set(FIELD_MAPPING) == set(FIELDS)
    for name in FIELDS:
        mapping = FIELD_MAPPING[name]
        assert mapping.note, name
        if mapping.is_job_parameter:
            assert mapping.flag is None and not mapping.masters, name
        else:
            assert mapping.flag is not None and mapping.flag.startswith("--"), name
            assert mapping.masters <= set(MASTER_KINDS), name


# master is checked per kind below; kill and status replace the submission (own tests).
@pytest.mark.parametrize("name", [n for n in FIELDS if n not in ("master", "kill", "status")])
@pytest.mark.parametrize("kind", MASTER_KINDS)
def test_every_field_reaches_argv_as_mapped(name: str, kind: str) -> None:
    mapping = FIELD_MAPPING[name]
    for deploy_mode in _deploy_modes(kind):
        if name == "deploy_mode" and deploy_mode == "cluster":
            continue
        if name == "deploy_mode" and kind in ("local", "standalone"):
            continue  # cluster mode is refused there (see below)
        base: dict[str, Any] = {"master": MASTERS[kind], "deploy_mode": deploy_mode}
        before = SparkArgs(**base).to_submit_argv()
        value = _sample(name) if name != "deploy_mode" else "cluster"
        after = SparkArgs(**{**base, **COMPANIONS.get(name, {}), name: value}).to_submit_argv()
        if mapping.is_job_parameter:
            assert after == before, (name, kind, deploy_mode)
            continue
        assert mapping.flag is not None
        expected = _expected_tokens(mapping.kind, mapping.flag, value)
        if mapping.applies(kind, deploy_mode if name != "deploy_mode" else "cluster"):
            assert _contains(after, expected), (name, kind, deploy_mode, after)
        else:
            assert mapping.flag not in after, (name, kind, deploy_mode, after)
            assert after == before, (name, kind, deploy_mode)


def _expected_tokens(kind: str, flag: str, value: Any) -> list[str]:
    if kind == "switch":
        return [flag]
    if kind == "conf":
        return [t for k, v in sorted(value.items()) for t in (flag, f"{k}={v}")]
    if isinstance(value, list):
        return [flag, ",".join(value)]
    return [flag, str(value)]


def _contains(argv: list[str], tokens: list[str]) -> bool:
    return any(argv[i : i + len(tokens)] == tokens for i in range(len(argv)))


@pytest.mark.parametrize("kind", MASTER_KINDS)
def test_master_and_deploy_mode_always_lead(kind: str) -> None:
    args = SparkArgs(master=MASTERS[kind])
    assert args.master_kind == kind
    assert args.to_submit_argv()[:4] == ["--master", MASTERS[kind], "--deploy-mode", "client"]


def test_defaults_are_skils_except_the_slow_ones() -> None:
    args = SparkArgs()
    assert (args.master, args.deploy_mode, args.driver_cores, args.yarn_queue) == (
        "local[*]",
        "client",
        1,
        "default",
    )
    assert (args.num_executors, args.num_epochs, args.p_args) == (2, 5, [])
    assert (args.multi_data_set, args.do_inference, args.verbose, args.supervise) == (
        False,
        False,
        False,
        False,
    )
    assert args.batch_size == DEFAULT_BATCH_SIZE == 1024
    assert args.total_executor_cores is None
    assert SKIL_DEFAULTS == {"batch_size": SKIL_DEFAULT_BATCH_SIZE, "total_executor_cores": 1}
    assert (SKIL_DEFAULT_BATCH_SIZE, SKIL_DEFAULT_TOTAL_EXECUTOR_CORES) == (16, 1)


def test_default_argv_per_master() -> None:
    base = ["--deploy-mode", "client"]
    assert SparkArgs(master="local[2]").to_submit_argv() == ["--master", "local[2]", *base]
    assert SparkArgs(master="yarn").to_submit_argv() == [
        "--master",
        "yarn",
        *base,
        "--queue",
        "default",
        "--num-executors",
        "2",
    ]
    k8s = MASTERS["k8s"]
    assert SparkArgs(master=k8s).to_submit_argv() == [
        "--master",
        k8s,
        *base,
        "--num-executors",
        "2",
    ]
    standalone = MASTERS["standalone"]
    assert SparkArgs(master=standalone).to_submit_argv() == ["--master", standalone, *base]


def test_master_specific_flags_spot_checks() -> None:
    def argv(master: str, **kw: Any) -> list[str]:
        return SparkArgs(master=master, **kw).to_submit_argv()

    assert "--queue" not in argv("spark://h:7077", yarn_queue="etl")
    assert _contains(argv("yarn", yarn_queue="etl"), ["--queue", "etl"])
    assert _contains(
        argv("spark://h:7077", total_executor_cores=8), ["--total-executor-cores", "8"]
    )
    assert "--total-executor-cores" not in argv("yarn", total_executor_cores=8)
    assert "--total-executor-cores" not in argv("local[*]", total_executor_cores=8)
    assert "--num-executors" not in argv("spark://h:7077", num_executors=9)
    assert "--supervise" in argv("mesos://h:5050", deploy_mode="cluster", supervise=True)
    assert "--supervise" not in argv("mesos://h:5050", supervise=True)
    assert "--supervise" not in argv("yarn", deploy_mode="cluster", supervise=True)
    assert "--driver-cores" not in argv("yarn", driver_cores=4)
    assert _contains(argv("yarn", deploy_mode="cluster", driver_cores=4), ["--driver-cores", "4"])
    assert "--executor-memory" not in argv("local[*]", executor_memory="4g")
    assert _contains(argv("local[*]", driver_memory="2g"), ["--driver-memory", "2g"])
    kerberos = {"principal": "etl@X", "keytab": "/k"}
    assert "--principal" in argv("yarn", **kerberos)
    assert "--principal" not in argv("spark://h:7077", **kerberos)
    assert argv("local[*]", verbose=True)[-1] == "--verbose"
    assert _contains(
        argv("local[*]", conf={"spark.b": "2", "spark.a": "1"}),
        ["--conf", "spark.a=1", "--conf", "spark.b=2"],
    )


@pytest.mark.parametrize("action", ["kill", "status"])
@pytest.mark.parametrize("kind", ["standalone", "mesos", "k8s"])
def test_kill_and_status_replace_the_submission(action: str, kind: str) -> None:
    args = SparkArgs(
        master=MASTERS[kind],
        driver_memory="2g",
        conf={"spark.a": "1"},
        verbose=True,
        **_kw(action, "driver-1"),
    )
    assert args.to_submit_argv() == [
        "--master",
        MASTERS[kind],
        f"--{action}",
        "driver-1",
        "--verbose",
        "--conf",
        "spark.a=1",
    ]


@pytest.mark.parametrize("action", ["kill", "status"])
@pytest.mark.parametrize("kind", ["local", "yarn"])
def test_kill_and_status_need_a_master_that_has_them(action: str, kind: str) -> None:
    with pytest.raises(InvalidValueError, match=f"^{action} needs a standalone") as info:
        SparkArgs(master=MASTERS[kind], **_kw(action, "driver-1")).validate()
    _one_sentence(info.value.message)


def test_comma_strings_become_lists() -> None:
    args = SparkArgs(jars="a.jar, b.jar", files="x.csv")  # type: ignore[arg-type]
    assert args.jars == ["a.jar", "b.jar"] and args.files == ["x.csv"]
    assert _contains(args.to_submit_argv(), ["--jars", "a.jar,b.jar"])


# --- builder ---------------------------------------------------------------------------


def test_builder_has_a_setter_per_field_and_skil_aliases() -> None:
    for name in FIELDS:
        assert callable(getattr(SparkArgsBuilder, name)), name
        alias = skil_name(name)
        if alias is not None:
            assert callable(getattr(SparkArgsBuilder, alias)), alias


def test_builder_chains_and_builds() -> None:
    args = SparkArgs.builder().master("yarn").do_inference(True).build()
    assert args == SparkArgs(master="yarn", do_inference=True)
    skil = (
        SparkArgs.builder()
        .master("yarn")
        .deployMode("cluster")
        .executorMemory("4g")
        .numExecutors(8)
        .yarnQueue("etl")
        .batchSize(256)
        .conf("spark.a", "1")
        .conf({"spark.b": "2"})
        .build()
    )
    assert skil == SparkArgs(
        master="yarn",
        deploy_mode="cluster",
        executor_memory="4g",
        num_executors=8,
        yarn_queue="etl",
        batch_size=256,
        conf={"spark.a": "1", "spark.b": "2"},
    )


def test_builder_validates_and_names_unknown_setters() -> None:
    with pytest.raises(InvalidValueError, match=r"^driver_memory"):
        SparkArgs.builder().driver_memory("lots").build()
    with pytest.raises(AttributeError, match="did you mean 'master'"):
        SparkArgs.builder().mastr("yarn")


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[1]",
        "local[*]",
        "local[4,2]",
        "local[*,3]",
        "spark://h:7077",
        "spark://h1:7077,h2:7077",
        "spark://10.0.0.1:7077",
        "yarn",
        "k8s://https://h:443",
        "k8s://http://h:8080",
        "k8s://h:443",
        "k8s://https://kubernetes.default.svc",
        "mesos://h:5050",
        "mesos://zk://z1:2181,z2:2181/mesos",
    ],
)
def test_good_masters(master: str) -> None:
    SparkArgs(master=master).validate()


@pytest.mark.parametrize(
    "master",
    [
        "",
        "local[]",
        "local[0]",
        "local[-1]",
        "local[x]",
        "local[2,0]",
        "locale",
        "spark://",
        "spark://h",
        "spark://h:port",
        "spark://h:70000",
        "spark://h:7077,",
        "YARN",
        "yarn-client",
        "yarn-cluster",
        "k8s://",
        "k8s://https://",
        "mesos://h",
        "mesos://zk://",
        "http://h:7077",
        "spark:/h:7077",
        " yarn",
    ],
)
def test_bad_masters_name_the_field_and_a_good_value(master: str) -> None:
    with pytest.raises(InvalidValueError, match=r"^master ") as info:
        SparkArgs(master=master).validate()
    message = info.value.message
    assert repr(master) in message and "'yarn'" in message
    _one_sentence(message)
    with pytest.raises(InvalidValueError):
        _ = SparkArgs(master=master).master_kind


@pytest.mark.parametrize("memory", ["512m", "2g", "1024k", "1t", "1073741824", "2G", "512mb"])
def test_good_memory(memory: str) -> None:
    SparkArgs(driver_memory=memory, executor_memory=memory).validate()


@pytest.mark.parametrize("name", ["driver_memory", "executor_memory"])
@pytest.mark.parametrize("memory", ["", "2 g", "2gigs", "-1g", "0", "0m", "g", "1.5g", "2x"])
def test_bad_memory(name: str, memory: str) -> None:
    with pytest.raises(InvalidValueError, match=f"^{name} ") as info:
        SparkArgs(**_kw(name, memory)).validate()
    assert "'2g'" in info.value.message or "'4g'" in info.value.message
    _one_sentence(info.value.message)


@pytest.mark.parametrize("mode", ["", "Client", "cluster ", "local"])
def test_bad_deploy_modes(mode: str) -> None:
    with pytest.raises(InvalidValueError, match=r"^deploy_mode .*deploy_mode='client'") as info:
        SparkArgs(deploy_mode=mode).validate()
    _one_sentence(info.value.message)


@pytest.mark.parametrize("master", ["local", "local[*]", "spark://h:7077"])
def test_cluster_mode_refused_where_spark_refuses_it(master: str) -> None:
    with pytest.raises(InvalidValueError, match=r"^deploy_mode 'cluster'") as info:
        SparkArgs(master=master, deploy_mode="cluster").validate()
    _one_sentence(info.value.message)


@pytest.mark.parametrize(
    "name", ["driver_cores", "num_executors", "total_executor_cores", "num_epochs", "batch_size"]
)
@pytest.mark.parametrize("value", [0, -3])
def test_counts_must_be_positive(name: str, value: int) -> None:
    with pytest.raises(InvalidValueError, match=f"^{name} must be at least 1") as info:
        SparkArgs(**_kw(name, value)).validate()
    assert f"{name}=" in info.value.message
    _one_sentence(info.value.message)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("batch_size", "16"),
        ("batch_size", 1.5),
        ("batch_size", True),
        ("num_executors", None),
        ("verbose", "yes"),
        ("jars", [1]),
        ("conf", {"spark.a": 1}),
        ("driver_memory", 2048),
        ("master", None),
    ],
)
def test_wrong_types(name: str, value: Any) -> None:
    with pytest.raises(InvalidValueError, match=f"^{name} must be") as info:
        SparkArgs(**_kw(name, value)).validate()
    assert f"{name}=" in info.value.message
    _one_sentence(info.value.message)


@pytest.mark.parametrize(
    ("kw", "start"),
    [
        ({"principal": "p@X"}, "keytab must be set"),
        ({"keytab": "/k"}, "principal must be set"),
        ({"principal": "p@X", "keytab": "/k", "proxy_user": "u"}, "proxy_user does not work"),
        ({"kill": "d", "status": "d", "master": "spark://h:7077"}, "kill and status"),
        ({"name": " "}, "name is empty"),
        ({"jars": ["a.jar", ""]}, "jars entry"),
        ({"conf": {"spark.a=b": "1"}}, "conf key"),
        ({"mode": "predict"}, "mode 'predict'"),
    ],
)
def test_other_bad_values(kw: dict[str, Any], start: str) -> None:
    with pytest.raises(InvalidValueError, match=f"^{re.escape(start)}") as info:
        SparkArgs(**kw).validate()
    _one_sentence(info.value.message)


# --- training is refused ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "train"},
        {"mode": "training", "do_inference": True},
        {"training_master_path": "/tm.json"},
        {"training_master_path": "/tm.json", "do_inference": False, "num_epochs": 10},
    ],
)
def test_training_is_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueError, match=f"^{re.escape(TRAINING_REFUSED)}") as info:
        SparkArgs(**kw).to_submit_argv()
    assert TRAINING_REFUSED == "skil-sdk runs inference; train elsewhere and export to ONNX"
    _one_sentence(info.value.message)
    with pytest.raises(InvalidValueError, match="train elsewhere"):
        SparkArgs.from_dict(kw).validate()


def test_inference_is_not_training() -> None:
    SparkArgs().validate()  # SKIL's default do_inference=False alone asks for nothing
    SparkArgs(training_master_path="/tm.json", do_inference=True).validate()
    SparkArgs(num_epochs=3, eval_type="classification").validate()


# --- dicts -----------------------------------------------------------------------------


def test_round_trip_through_json() -> None:
    args = SparkArgs(
        master="yarn",
        deploy_mode="cluster",
        jars=["a.jar"],
        executor_memory="4g",
        total_executor_cores=8,
        p_args=["--x", "1"],
        conf={"spark.a": "1"},
        do_inference=True,
        batch_size=64,
        output_path="file:///tmp/o",
        supervise=True,
    )
    data = json.loads(json.dumps(args.to_dict()))
    assert set(data) == set(FIELDS)
    again = SparkArgs.from_dict(data)
    assert again == args and again.to_submit_argv() == args.to_submit_argv()
    assert SparkArgs.from_dict(SparkArgs().to_dict()) == SparkArgs()


def test_to_dict_copies() -> None:
    args = SparkArgs(conf={"spark.a": "1"})
    args.to_dict()["conf"]["spark.a"] = "2"
    assert args.conf == {"spark.a": "1"}


def test_from_dict_takes_skil_names() -> None:
    args = SparkArgs.from_dict(
        {
            "deployMode": "client",
            "doInference": True,
            "batchSize": 32,
            "pArgs": ["-v"],
            "evalDataSetProviderClass": "m:C",
        }
    )
    assert (args.deploy_mode, args.do_inference, args.batch_size) == ("client", True, 32)
    assert (args.p_args, args.eval_data_set_provider_class) == (["-v"], "m:C")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"driver_mem": "2g"}, "driver_mem"),
        ({"masterUrl": "yarn"}, "masterUrl"),
        ({"": 1}, ""),
    ],
)
def test_from_dict_unknown_keys(data: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidValueError, match=f"^Unknown SparkArgs key {re.escape(repr(key))}"):
        SparkArgs.from_dict(data)


def test_from_dict_refuses_a_field_given_twice() -> None:
    with pytest.raises(InvalidValueError, match="repeats field 'batch_size'"):
        SparkArgs.from_dict({"batch_size": 1, "batchSize": 2})


# --- docs ------------------------------------------------------------------------------


def test_docs_table_has_every_field() -> None:
    text = DOCS.read_text(encoding="utf-8").split("## Every field", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*$", text, re.M)}
    assert set(rows) == set(FIELDS)
    for name in FIELDS:
        row = rows[name]
        alias = skil_name(name)
        assert (f"`{alias}`" if alias else "—") in row, name
        flag = FIELD_MAPPING[name].flag
        assert (f"`{flag}" if flag else "job parameter") in row, name
