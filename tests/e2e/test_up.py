"""`mentoring up` as a person runs it: Kafka, the database, the services and two matching
workers come up and are listed; Ctrl-C stops every process and frees every port; the next
`mentoring up` finds the programs created before."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from mentoring.stack import SERVICES, free_port

READY = "Ctrl-C stops everything"


def ports_with_room() -> dict[str, int]:
    """Fixed ports as a person's environment sets them, with room for the second matching
    worker ten above the first."""
    while True:
        fixed = ("broker", "controller", "mongodb", "gateway", "gateway-status", "smtp")
        chosen = {name: free_port() for name in fixed}
        for service in SERVICES:
            for kind in ("grpc", "metrics", "http"):
                chosen[f"{service}-{kind}"] = free_port()
        extra = {
            f"matching-2-{k}": chosen[f"matching-{k}"] + 10 for k in ("grpc", "metrics", "http")
        }
        if all(map(_free, extra.values())) and len(set(chosen.values())) == len(chosen):
            return {**chosen, **extra}


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def environment(ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    env.update(
        MENTORING_BROKER_PORT=str(ports["broker"]),
        MENTORING_CONTROLLER_PORT=str(ports["controller"]),
        MENTORING_MONGODB_PORT=str(ports["mongodb"]),
        MENTORING_GATEWAY_PORT=str(ports["gateway"]),
        MENTORING_GATEWAY_STATUS_PORT=str(ports["gateway-status"]),
        MENTORING_SMTP_PORT=str(ports["smtp"]),
    )
    for service in SERVICES:
        env[f"{service.upper()}_GRPC_PORT"] = str(ports[f"{service}-grpc"])
        env[f"{service.upper()}_METRICS_PORT"] = str(ports[f"{service}-metrics"])
        env[f"{service.upper()}_HTTP_PORT"] = str(ports[f"{service}-http"])
        env[f"{service.upper()}_ADDR"] = f"127.0.0.1:{ports[f'{service}-grpc']}"
    return env


class Up:
    """A running `mentoring up`, its output collected as it comes."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mentoring.cli",
                "up",
                "--log-dir",
                str(tmp / "logs"),
                "--data-dir",
                str(tmp / "data"),
            ],
            # A standard terminal's width: every address must show whole in it.
            env={**env, "COLUMNS": "80"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while READY not in self.output:
            assert self.process.poll() is None, self.output
            assert time.monotonic() < deadline, self.output
            time.sleep(0.2)
        return self.output

    def interrupt(self) -> str:
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(60) == 0, self.output
        time.sleep(0.2)  # the reader thread drains the last lines
        return self.output


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mentoring.cli", *args],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_up_lists_everything_stops_clean_and_keeps_the_data(tmp_path: Path) -> None:
    ports = ports_with_room()
    env = environment(ports)
    first = Up(tmp_path, env)
    try:
        shown = first.wait_ready()
        for expected in ("Apache Kafka 3.9.1", "SecantusDB", "matching-2", *SERVICES):
            assert expected in shown
        # Every address a user connects to; the services' HTTP ports are the gateway's business.
        for name, port in ports.items():
            if not name.endswith("-http") and name != "gateway-status":
                assert f":{port}" in shown, (name, port)
        program = cli(env, "programs", "create", "-o", "acme", "--name", "Kept across runs")
        assert program.startswith("created program "), program
        program_id = program.split()[2]
    finally:
        output = first.interrupt()
    assert "Stopped." in output and "unclean" not in output
    assert all(_free(port) for port in ports.values()), output

    second = Up(tmp_path, env)
    try:
        second.wait_ready()
        listed = cli(env, "programs", "list", "-o", "acme")
        assert "Kept across runs" in listed and program_id in listed
    finally:
        second.interrupt()
