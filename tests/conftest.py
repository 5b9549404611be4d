"""Loaded by pytest before any test module: the launcher's process settings come first."""

import mentoring  # noqa: F401  (turns gRPC fork support off before grpc is imported)


def pytest_sessionstart(session: object) -> None:
    # Matching's solver is compiled by numba: compiled (or loaded from its on-disk cache) once
    # here, so that the matching services the end-to-end tests start find it in the cache
    # rather than each spending ~13 s of CPU compiling it during a test.
    from services.matching.domain.augment import warm_up

    warm_up()
