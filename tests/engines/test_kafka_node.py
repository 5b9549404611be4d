"""Formatting Kafka's storage, as the launcher does before the first start."""

from __future__ import annotations

from pathlib import Path

from mentoring.engines.kafka import KafkaNode
from mentoring.stack import free_port


def test_a_cluster_id_starting_with_a_dash_formats(tmp_path: Path) -> None:
    # A random id is base64url: one in 64 starts with "-", which once broke the format step.
    node = KafkaNode(tmp_path / "kafka", free_port(), free_port())
    node.prepare(cluster_id="-Nq1xq0fRkWg8r3hX0a9cA")
    meta = (node.log_dirs / "meta.properties").read_text()
    assert "cluster.id=-Nq1xq0fRkWg8r3hX0a9cA" in meta
