"""Prometheus Alertmanager as the reference: its in-memory intake under the same load generator."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BINARY = "/usr/bin/prometheus-alertmanager"

# Every alert goes to a receiver with no integrations: we measure intake, not delivery.
CONFIG = """\
route:
  receiver: blackhole
receivers:
  - name: blackhole
"""


def binary() -> str | None:
    return BINARY if Path(BINARY).exists() else shutil.which("prometheus-alertmanager")


def version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    lines = (out.stdout or out.stderr).splitlines()
    return lines[0] if lines else "unknown"


@contextmanager
def running_alertmanager(port: int, *, ready_timeout: float = 30.0) -> Iterator[str]:
    """A throw-away Alertmanager on 127.0.0.1:``port``, clustering off; yields its base URL."""
    path = binary()
    if path is None:
        raise SystemExit("Alertmanager is not installed: apt-get install prometheus-alertmanager")
    with tempfile.TemporaryDirectory(prefix="tocsin-am-") as tmp:
        config = Path(tmp) / "alertmanager.yml"
        config.write_text(CONFIG)
        log = (Path(tmp) / "alertmanager.log").open("wb")
        proc = subprocess.Popen(
            [
                path,
                f"--config.file={config}",
                f"--storage.path={Path(tmp) / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(proc, base_url, ready_timeout, Path(tmp) / "alertmanager.log")
            yield base_url
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"Alertmanager exited at start-up:\n{log.read_text()[-2000:]}")
            try:
                if client.get(f"{base_url}/-/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Alertmanager not ready in {timeout:.0f}s")
            time.sleep(0.05)


def alerts_received(base_url: str) -> int:
    """Alertmanager's own count of alerts taken in: checks that a 200 meant an alert held."""
    text = httpx.get(f"{base_url}/metrics", timeout=10.0).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("alertmanager_alerts_received_total{")
    )
