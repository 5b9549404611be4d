"""Operator tooling for the platform: the `mentoring` CLI and the embedded stack launcher."""

import os

# The launcher starts services with subprocess.Popen(preexec_fn=...), a plain fork() in a
# process that may hold gRPC channels. With gRPC's fork support on, the child restarts gRPC's
# poller before exec; Popen then closes the poller's epoll descriptor and the child aborts
# ("epoll_wait error: Bad file descriptor", grpc/grpc#43055). Nothing here uses gRPC across a
# fork, so it is turned off, before grpc is first imported (it reads this at import).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
