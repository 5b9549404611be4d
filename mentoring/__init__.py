"""Operator tooling for the platform: the `mentoring` CLI and the embedded stack launcher."""
