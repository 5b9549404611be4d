"""The launcher forks service processes from a process that holds gRPC channels."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# Imports mentoring first, as the CLI and the test suite do, then forks children the way the
# launcher does (Popen with a preexec_fn) while a gRPC server and channel are busy.
SCRIPT = textwrap.dedent(
    """
    import subprocess
    from concurrent import futures

    import mentoring  # noqa: F401

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(4))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    failed = []
    for _ in range(200):
        stub.Check(health_pb2.HealthCheckRequest())
        child = subprocess.Popen(["true"], preexec_fn=lambda: None, stderr=subprocess.PIPE)
        _, err = child.communicate()
        if child.returncode != 0:
            failed.append((child.returncode, err.decode()[-200:]))
    print(len(failed), failed[:1])
    """
)


def test_children_forked_beside_grpc_channels_start() -> None:
    # Not inherited from this process: importing mentoring must be what sets it.
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("0 "), result.stdout
