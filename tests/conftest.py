"""Loaded by pytest before any test module: the launcher's process settings come first."""

import mentoring  # noqa: F401  (turns gRPC fork support off before grpc is imported)
