"""The session's parts that need no Spark: durations, settings, the JSON-lines channel,
and the bound on the models a Python worker keeps loaded."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from skil_sdk import SparkArgs
from skil_sdk.errors import InvalidValueError
from skil_sdk.session.channel import Channel, ChannelClosed, request
from skil_sdk.session.state import (
    RUNNING,
    SessionState,
    first_difference,
    parse_duration,
    read_state,
    settings_of,
    state_path,
    update_state,
    write_state,
)
from skil_sdk.spark import executor


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0), ("1d", 86400.0),
     ("0", 0.0), ("1.5m", 90.0), (" 10 S ", 10.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "-5", "5w", "1h30m"])
def test_a_bad_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(InvalidValueError, match=r"e\.g\. 30m"):
        parse_duration(text)


def test_settings_name_each_flag_and_conf_but_not_the_name() -> None:
    args = SparkArgs(
        master="local[2]", name="nightly", driver_memory="2g",
        conf={"spark.sql.shuffle.partitions": "3"},
    )
    settings = settings_of(args, "/opt/spark")
    assert settings["--master"] == "local[2]"
    assert settings["--driver-memory"] == "2g"
    assert settings["--conf spark.sql.shuffle.partitions"] == "3"
    assert settings["spark home"] == "/opt/spark"
    assert "--name" not in settings
    renamed = settings_of(dataclasses.replace(args, name="other"), "/opt/spark")
    assert first_difference(renamed, settings) is None


def test_the_first_difference_names_the_setting_and_both_values() -> None:
    session = settings_of(SparkArgs(master="local[2]"), "/opt/spark")
    job = settings_of(SparkArgs(master="local[2]", driver_memory="4g"), "/opt/spark")
    assert first_difference(job, session) == (
        "--driver-memory is 4g for the job and (unset) in the session"
    )


def test_the_record_round_trips_and_updates_keep_the_rest(skil_home: Any) -> None:
    assert read_state().state == "stopped"
    write_state(SessionState(state=RUNNING, master="local[2]", jobs_run=3))
    update_state(jobs=["job-1"])
    raw = json.loads(state_path().read_text())
    stored = SessionState.from_dict({**raw, "an unknown key": 1})
    assert stored.master == "local[2]" and stored.jobs_run == 3 and stored.jobs == ["job-1"]
    # no process id recorded, so nothing is alive: it reads as stopped, with the reason
    dead = read_state()
    assert dead.state == "stopped" and dead.jobs == []
    assert "ended without stopping" in str(dead.error)


@pytest.fixture()
def connected() -> Iterator[tuple[Channel, socket.socket]]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]))
    thread.start()
    client = Channel.connect(port)
    thread.join()
    listener.close()
    try:
        yield client, accepted[0]
    finally:
        client.close()
        accepted[0].close()


def test_the_channel_carries_documents_split_and_joined_anyhow(
    connected: tuple[Channel, socket.socket],
) -> None:
    client, server = connected
    server.sendall(b'{"a": 1}\n{"b"')
    assert client.receive(timeout=5) == {"a": 1}
    assert client.receive(timeout=0) is None, "half a document is not a document"
    server.sendall(b': [2, 3]}\n')
    assert client.receive(timeout=5) == {"b": [2, 3]}
    client.send({"op": "status"})
    assert Channel(server).receive(timeout=5) == {"op": "status"}


@pytest.mark.parametrize("sent", [b"not json\n", b"[1, 2]\n", b""])
def test_a_closed_or_garbled_channel_raises(
    connected: tuple[Channel, socket.socket], sent: bytes
) -> None:
    client, server = connected
    if sent:
        server.sendall(sent)
    else:
        server.close()
    with pytest.raises(ChannelClosed):
        client.receive(timeout=5)


def test_a_request_to_a_port_nobody_answers_on_fails_at_once() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(OSError):
        request(port, {"op": "status"}, timeout=5)


def test_a_worker_keeps_the_most_recently_used_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor, "_RUNNERS", type(executor._RUNNERS)())
    monkeypatch.setenv(executor.MODEL_SESSIONS_ENV, "2")
    for name in ("a", "b"):
        executor.remember_runner((name, "cpu"), object())
    executor._RUNNERS.move_to_end(("a", "cpu"))  # "a" used again
    executor.remember_runner(("c", "cpu"), object())
    assert list(executor._RUNNERS) == [("a", "cpu"), ("c", "cpu")]
    monkeypatch.setenv(executor.MODEL_SESSIONS_ENV, "0")  # at least one stays
    executor.remember_runner(("d", "cpu"), object())
    assert list(executor._RUNNERS) == [("d", "cpu")]
