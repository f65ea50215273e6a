"""The load generator: wrk with a Lua script per scenario, the same for every system measured.

Each script is run together with lua/report.lua, whose ``done`` prints one ``WRK_RESULT`` JSON
line with the totals and latency percentiles; we parse that rather than wrk's prose.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).resolve().parent / "lua"
RESULT_PREFIX = "WRK_RESULT "


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    accepted: int | None  # responses with the expected status, when the script counts them
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def failed(self) -> int:
        """Non-2xx/3xx answers plus connections that broke or timed out."""
        return sum(self.errors.values())

    @property
    def ok(self) -> int:
        if self.accepted is not None:
            return self.accepted
        return max(self.requests - self.errors.get("status", 0), 0)

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "errors": self.errors,
            "requests_per_second": round(self.requests_per_second, 1),
            "latency_ms": {
                "p50": self.p50_ms,
                "p90": self.p90_ms,
                "p99": self.p99_ms,
                "max": self.max_ms,
            },
        }


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    return path


def _script(name: str, workdir: Path, *, counted: bool = False) -> Path:
    """The scenario script with the shared parts appended (wrk takes a single file)."""
    parts = [name, "quota", "report"] if counted else [name, "report"]
    target = workdir / f"{name}.lua"
    target.write_text("\n".join((LUA_DIR / f"{part}.lua").read_text() for part in parts))
    return target


def _argv(
    url: str, script: Path, args: list[str], *, threads: int, connections: int, seconds: float
) -> list[str]:
    return [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        *args,
    ]


def parse(output: str) -> WrkResult:
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            raw = json.loads(line[len(RESULT_PREFIX) :])
            lat = raw["latency_us"]
            return WrkResult(
                requests=raw["requests"],
                seconds=raw["duration_us"] / 1e6,
                errors=raw["errors"],
                accepted=raw["accepted"],
                p50_ms=lat["p50"] / 1000,
                p90_ms=lat["p90"] / 1000,
                p99_ms=lat["p99"] / 1000,
                max_ms=lat["max"] / 1000,
            )
    raise RuntimeError(f"wrk printed no result line:\n{output[-2000:]}")


def run_for(
    url: str,
    script: str,
    args: list[str],
    *,
    seconds: float,
    connections: int,
    threads: int,
) -> WrkResult:
    """Keep ``connections`` busy for ``seconds``."""
    threads = min(threads, connections)
    with tempfile.TemporaryDirectory(prefix="tocsin-wrk-") as tmp:
        argv = _argv(
            url,
            _script(script, Path(tmp)),
            args,
            threads=threads,
            connections=connections,
            seconds=seconds,
        )
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    return parse(done.stdout)


def run_count(
    url: str,
    script: str,
    args: list[str],
    *,
    total: int,
    connections: int,
    threads: int,
    timeout: float,
) -> WrkResult:
    """Send exactly ``total`` requests, as fast as ``connections`` allow, and wait for every
    answer, so that no slow request escapes the latencies as it would at the end of a timed run.

    wrk has no request-count mode: lua/quota.lua makes each thread send its share and report
    when it is answered; wrk is then interrupted (SIGINT makes it print its summary).
    ``timeout`` bounds the run.
    """
    threads = min(threads, connections)
    if total % threads:
        raise ValueError(f"{total} requests do not split evenly over {threads} wrk threads")
    with tempfile.TemporaryDirectory(prefix="tocsin-wrk-") as tmp:
        argv = _argv(
            url,
            _script(script, Path(tmp), counted=True),
            [*args, str(total // threads)],
            threads=threads,
            connections=connections,
            seconds=timeout,
        )
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            finished = 0
            while finished < threads:
                line = proc.stdout.readline()
                if not line:
                    break  # wrk ended by itself: the timeout ran out
                lines.append(line)
                if line.startswith("QUOTA_THREAD_DONE"):
                    finished += 1
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            rest, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err[-2000:]}")
    return parse("".join(lines) + rest)
