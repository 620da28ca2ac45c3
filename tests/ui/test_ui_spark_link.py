"""The job page's Spark UI link: the address Spark reported binding, not the one it tried."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from skil_sdk.server.embedded import EmbeddedServer
from skil_sdk.server.ui_views import spark_ui_url
from skil_sdk.store.jobs import JobStore

# What Spark 4 logs at INFO when another application already holds port 4040.
PORT_TAKEN = """\
26/12/01 20:55:50 INFO SparkEnv: Registering OutputCommitCoordinator
26/12/01 20:55:50 INFO JettyUtils: Start Jetty 0.0.0.0:4040 for SparkUI
26/12/01 20:55:50 WARN Utils: Service 'SparkUI' could not bind on port 4040. Attempting port 4041.
26/12/01 20:55:50 INFO Utils: Successfully started service 'SparkUI' on port 4041.
26/12/01 20:55:51 INFO Utils: Successfully started service \
'org.apache.spark.network.netty.NettyBlockTransferService' on port 36057.
26/12/01 20:55:51 INFO BlockManagerMaster: Registering BlockManager \
BlockManagerId(driver, 192.0.2.2, 36057, None)
"""
STOPPED = "26/12/01 20:55:53 INFO SparkUI: Stopped Spark web UI at http://192.0.2.2:4041\n"
# Spark 3 also logs the whole address once the UI is bound.
SPARK3_BOUND = """\
24/05/02 09:00:01 INFO Utils: Successfully started service 'SparkUI' on port 4041.
24/05/02 09:00:01 INFO SparkUI: Bound SparkUI to 0.0.0.0, and started at http://driver-1:4041
"""


def test_the_link_has_the_port_spark_bound_when_4040_was_taken() -> None:
    assert spark_ui_url({"state": "RUNNING"}, PORT_TAKEN) == {
        "url": "http://192.0.2.2:4041",
        "live": True,
    }


def test_the_link_after_the_ui_stopped_is_the_address_spark_logged_on_stopping() -> None:
    assert spark_ui_url({"state": "RUNNING"}, PORT_TAKEN + STOPPED) == {
        "url": "http://192.0.2.2:4041",
        "live": False,
    }


def test_the_whole_address_spark_3_logs_is_taken_as_it_is() -> None:
    assert spark_ui_url({"state": "RUNNING"}, SPARK3_BOUND) == {
        "url": "http://driver-1:4041",
        "live": True,
    }


def test_the_host_comes_from_the_bind_address_or_the_driver_or_is_localhost() -> None:
    bound_to_one = (
        "INFO JettyUtils: Start Jetty 10.1.2.3:4040 for SparkUI\n"
        "INFO Utils: Successfully started service 'SparkUI' on port 4042.\n"
    )
    assert spark_ui_url({}, bound_to_one) == {"url": "http://10.1.2.3:4042", "live": True}
    ipv6_driver = (
        "INFO Utils: Successfully started service 'SparkUI' on port 4041.\n"
        "INFO BlockManagerMaster: Registering BlockManager "
        "BlockManagerId(driver, fd00::5, 40001, None)\n"
    )
    assert spark_ui_url({}, ipv6_driver) == {"url": "http://[fd00::5]:4041", "live": True}
    port_only = "INFO Utils: Successfully started service 'SparkUI' on port 4043.\n"
    assert spark_ui_url({"state": "SUCCEEDED"}, port_only) == {
        "url": "http://localhost:4043",
        "live": False,
    }


def test_no_link_until_spark_reports_a_bound_port() -> None:
    trying = "INFO JettyUtils: Start Jetty 0.0.0.0:4040 for SparkUI\n"
    assert spark_ui_url({"state": "RUNNING"}, trying) is None
    assert spark_ui_url({"state": "RUNNING"}, "") is None


def test_a_recorded_address_wins_over_the_log() -> None:
    job = {"state": "RUNNING", "details": {"spark_ui_url": "https://proxy.example/app-1/"}}
    assert spark_ui_url(job, PORT_TAKEN) == {"url": "https://proxy.example/app-1/", "live": True}


def test_the_job_page_links_to_port_4041(ui_server: EmbeddedServer, tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text(PORT_TAKEN, encoding="utf-8")
    job = JobStore().create(model_id="m", provider="p", output_path="/out", log_path=str(log))
    JobStore().mark_running(job.id)
    with httpx.Client(base_url=ui_server.url) as browser:
        login = {"token": ui_server.admin_token, "next": f"/ui/jobs/{job.id}"}
        assert browser.post("/ui/login", data=login).status_code == 303
        page = browser.get(f"/ui/jobs/{job.id}")
    assert page.status_code == 200
    assert set(re.findall(r'href="(http://[^"]*:40\d\d)"', page.text)) == {"http://192.0.2.2:4041"}
