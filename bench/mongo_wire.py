"""Speed of the MongoDB-wire server `make up` runs, at 100,000 documents.

    python bench/mongo_wire.py [--documents 100000] [--operations 3000]

Starts the server as the launcher does, loads a collection of participants with a unique index
on (organization_id, participant_id), then measures from one client, as a service's storage
thread issues them:
1. an indexed find_one by (organization_id, participant_id);
2. a conditional update_one ({capacity: {$gt: 0}}, $inc -1), the shape of every guarded write
   in the services;
3. the same update from four clients at once.
Reference row in the same run: `ping` round trips, the floor any command pays on this server
and client. Targets (issue "Run on the real engines"): >= 1,000 operations/s each.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymongo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mentoring.stack import Ports, Stack

TARGET = 1000.0
ORG = "bench-org"


def rate(count: int, run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--operations", type=int, default=3000)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as logs:
        stack = Stack(Ports.free(), log_dir=Path(logs))
        try:
            stack.start_mongodb()
            client: pymongo.MongoClient = pymongo.MongoClient(stack.mongodb.uri)
            people = client["bench"]["participants"]
            people.create_index([("organization_id", 1), ("participant_id", 1)], unique=True)
            load = rate(
                args.documents,
                lambda: [
                    people.insert_many(
                        [
                            {"organization_id": ORG, "participant_id": f"p{n}", "capacity": 3}
                            for n in range(start, min(start + 5000, args.documents))
                        ]
                    )
                    for start in range(0, args.documents, 5000)
                ],
            )
            keys = [f"p{rng.randrange(args.documents)}" for _ in range(args.operations)]
            ping = rate(args.operations, lambda: [client.admin.command("ping") for _ in keys])
            find = rate(
                args.operations,
                lambda: [
                    people.find_one({"organization_id": ORG, "participant_id": k}) for k in keys
                ],
            )

            def decrement(batch: list[str], collection: pymongo.collection.Collection) -> None:
                for k in batch:
                    collection.update_one(
                        {"organization_id": ORG, "participant_id": k, "capacity": {"$gt": 0}},
                        {"$inc": {"capacity": -1}},
                    )

            update = rate(args.operations, lambda: decrement(keys, people))
            clients = [pymongo.MongoClient(stack.mongodb.uri) for _ in range(4)]
            with ThreadPoolExecutor(4) as pool:
                parallel = rate(
                    args.operations,
                    lambda: list(
                        pool.map(
                            decrement,
                            [keys[i::4] for i in range(4)],
                            [c["bench"]["participants"] for c in clients],
                        )
                    ),
                )
        finally:
            stack.stop()
    heading = f"measure ({args.documents:,} documents)"
    print(f"{heading:<48}{'ops/s':>10}{'target':>10}  verdict")
    print(f"{'bulk load (insert_many of 5,000)':<48}{load:>10,.0f}")
    for name, value in (
        ("indexed find_one", find),
        ("conditional update_one", update),
        ("conditional update_one, 4 clients", parallel),
    ):
        verdict = "PASS" if value >= TARGET else "MISS"
        print(f"{name:<48}{value:>10,.0f}{TARGET:>10,.0f}  {verdict}")
    print(f"{'reference: ping round trips':<48}{ping:>10,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
