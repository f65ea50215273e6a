"""`tocsin demo` really starts: a subprocess on a free port takes an event with a printed key."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _command() -> list[str]:
    script = Path(sys.executable).parent / "tocsin"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tocsin.cli.main"]


class Demo:
    def __init__(self, data_dir: Path, log_dir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = log_dir / f"demo-{self.port}.out"
        self.stderr_path = log_dir / f"demo-{self.port}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
        env["TOCSIN_LOG_LEVEL"] = "WARNING"
        argv = [*_command(), "demo", "--data-dir", str(data_dir),
                "--config", str(ROOT / "examples"), "--port", str(self.port)]  # fmt: skip
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )

    @property
    def output(self) -> str:
        return self.stdout_path.read_text()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"demo exited with {self.proc.returncode}:\n{self.stderr_path.read_text()}"
                    )
                try:
                    if client.get(f"{self.url}/readyz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"demo not ready:\n{self.stderr_path.read_text()}")
                time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        return self.proc.returncode


@pytest.fixture
def demos(tmp_path: Path) -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    for demo in started:
        demo.stop()


def _admin_token(output: str) -> str:
    match = re.search(r"Admin token\s+(tcs_\S+)", output)
    assert match, output
    return match.group(1)


@pytest.mark.slow
def test_demo_serves_the_example_organisation(tmp_path: Path, demos: list[Demo]) -> None:
    data_dir = tmp_path / "data"
    demo = Demo(data_dir, tmp_path)
    demos.append(demo)
    demo.wait_ready()

    output = demo.output
    token = _admin_token(output)
    token_file = data_dir / "admin-token"
    assert token_file.read_text().strip() == token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    match = re.search(r"checkout-api/app-events\s+pagerduty\s+([a-z0-9]{32})", output)
    assert match, output
    key = match.group(1)
    assert key == "agyb96nre1atigoqhsutrphodzs7942y"  # fixed in examples/, stable across runs
    assert f"curl -sS -X POST {demo.url}/v2/enqueue" in output

    event = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": "demo-test",
        "payload": {"summary": "Checkout is slow", "source": "test", "severity": "critical"},
    }
    with httpx.Client(base_url=demo.url, timeout=10.0) as client:
        accepted = client.post("/v2/enqueue", json=event)
        assert accepted.status_code == 202, accepted.text
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 30
        while True:  # the processor runs in the background
            items = client.get("/api/v1/incidents", headers=headers).json()["items"]
            if items:
                break
            assert time.monotonic() < deadline, "no incident appeared"
            time.sleep(0.05)
    assert items[0]["title"] == "Checkout is slow"
    assert items[0]["service"] == "checkout-api"
    assert demo.stop() == 0

    # A second run reuses the data directory and the saved token.
    again = Demo(data_dir, tmp_path)
    demos.append(again)
    again.wait_ready()
    assert _admin_token(again.output) == token
    with httpx.Client(base_url=again.url, timeout=10.0) as client:
        listed = client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 1
