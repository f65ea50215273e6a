"""A real Prometheus Alertmanager delivering to Tocsin: its webhook receiver and its PagerDuty
receiver, unchanged apart from the URLs."""

from __future__ import annotations

import hashlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tests.conftest import Org
from tests.ingest.conftest import LiveServer, alerts, set_options, stored
from tests.services import require_binary
from tocsin.runtime import Runtime

pytestmark = pytest.mark.slow

TOKEN = "am-webhook-token"
CONFIG = """\
route:
  receiver: tocsin
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: tocsin-pd
      matchers: ['via="pagerduty"']
receivers:
  - name: tocsin
    webhook_configs:
      - url: {url}/integrations/alertmanager/{am_key}
        http_config:
          authorization:
            credentials: {token}
          tls_config:
            ca_file: {ca}
  - name: tocsin-pd
    pagerduty_configs:
      - routing_key: {pd_key}
        url: {url}/v2/enqueue
        severity: warning
        http_config:
          tls_config:
            ca_file: {ca}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def alertmanager(
    live_server: LiveServer, org: Org, runtime: Runtime, test_ca: trustme.CA, tmp_path: Path
) -> Iterator[str]:
    binary = require_binary("prometheus-alertmanager", "the prometheus-alertmanager package")
    set_options(
        runtime,
        org.am_key,
        {"auth": {"type": "bearer", "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}},
    )
    ca = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(ca))
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        CONFIG.format(url=live_server.url, am_key=org.am_key, pd_key=org.pd_key, token=TOKEN, ca=ca)
    )
    port = _free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError((tmp_path / "alertmanager.log").read_text()[-2000:])
        try:
            return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait_for(ready, "Alertmanager to start")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _post_alerts(base: str, alerts_: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{base}/api/v2/alerts", json=alerts_, timeout=5)
    assert response.status_code == 200, response.text


def _alert(name: str, instance: str, *, ends: datetime | None = None, **labels: str) -> Any:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "instance": instance, **labels},
        "annotations": {"summary": f"{name} on {instance}"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (ends or now + timedelta(hours=1)).isoformat(),
        "generatorURL": "http://prometheus.example.com/graph",
    }


def test_alertmanager_webhook_fires_and_resolves(
    alertmanager: str, runtime: Runtime, org: Org
) -> None:
    firing = [
        _alert("DiskFull", "db-1", severity="critical"),
        _alert("DiskFull", "db-2", severity="warning"),
    ]
    _post_alerts(alertmanager, firing)
    _wait_for(lambda: len(stored(runtime)) >= 2, "the firing notification")
    runtime.processor.drain()
    by_summary = {a.summary: a for a in alerts(runtime)}
    assert set(by_summary) == {"DiskFull on db-1", "DiskFull on db-2"}
    assert by_summary["DiskFull on db-1"].severity == "critical"
    assert by_summary["DiskFull on db-2"].source == "db-2"
    details = by_summary["DiskFull on db-1"].details["custom_details"]
    assert details["receiver"] == "tocsin"
    assert details["groupLabels"] == {"alertname": "DiskFull"}

    ended = datetime.now(UTC) - timedelta(seconds=1)
    _post_alerts(alertmanager, [_alert("DiskFull", "db-1", ends=ended, severity="critical")])

    def db1_resolved() -> bool:
        runtime.processor.drain()
        return by_status(runtime).get("DiskFull on db-1") == "resolved"

    _wait_for(db1_resolved, "the resolved notification")
    assert by_status(runtime)["DiskFull on db-2"] == "triggered"


def test_alertmanager_pagerduty_receiver_pointed_at_tocsin(
    alertmanager: str, runtime: Runtime, org: Org
) -> None:
    _post_alerts(alertmanager, [_alert("QueueStuck", "worker-1", via="pagerduty")])
    _wait_for(lambda: any(e.action == "trigger" for e in stored(runtime)), "the PagerDuty event")
    runtime.processor.drain()
    [alert] = alerts(runtime)
    assert alert.severity == "warning"
    assert "QueueStuck" in alert.summary

    ended = datetime.now(UTC) - timedelta(seconds=1)
    _post_alerts(alertmanager, [_alert("QueueStuck", "worker-1", ends=ended, via="pagerduty")])

    def resolved() -> bool:
        runtime.processor.drain()
        return alerts(runtime)[0].status == "resolved"

    _wait_for(resolved, "the PagerDuty resolve event")


def by_status(runtime: Runtime) -> dict[str, str]:
    return {a.summary: a.status for a in alerts(runtime)}
