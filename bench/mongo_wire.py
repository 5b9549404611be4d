"""Speed of the MongoDB-wire server `make up` runs, at 100,000 documents.

    python bench/mongo_wire.py [--documents 100000] [--operations 3000]

Starts the server as the launcher does, loads a collection of participants with a unique index
on (organization_id, participant_id), then measures from one client, as a service's storage
thread issues them:
1. an indexed find_one by (organization_id, participant_id);
2. a conditional update_one ({_id, capacity: {$gt: 0}}, $inc), the shape of a guarded write;
3. the guarded write as the services make it by key (services.common.storage.update_if: the
   _id by the indexed key, then 2.), then the same from four clients at once;
4. for contrast, key and condition in one filter: this server then scans the organization's
   documents (MongoDB would use the index), so only --scanned operations run.
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
    parser.add_argument(
        "--scanned", type=int, default=3, help="operations of the one-filter shape, which scans"
    )
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
            ids = {
                d["participant_id"]: d["_id"]
                for d in people.find({"participant_id": {"$in": keys}}, {"participant_id": 1})
            }
            ping = rate(args.operations, lambda: [client.admin.command("ping") for _ in keys])
            find = rate(
                args.operations,
                lambda: [
                    people.find_one({"organization_id": ORG, "participant_id": k}) for k in keys
                ],
            )
            by_id = rate(
                args.operations,
                lambda: [
                    people.update_one(
                        {"_id": ids[k], "capacity": {"$gt": 0}}, {"$inc": {"capacity": -1}}
                    )
                    for k in keys
                ],
            )

            def update_if(batch: list[str], collection: pymongo.collection.Collection) -> None:
                # What services.common.storage.update_if sends: the _id by key, then by _id.
                for k in batch:
                    found = collection.find_one(
                        {"organization_id": ORG, "participant_id": k}, {"_id": 1}
                    )
                    collection.update_one(
                        {"_id": found["_id"], "capacity": {"$gt": 0}}, {"$inc": {"capacity": 1}}
                    )

            by_key = rate(args.operations, lambda: update_if(keys, people))
            clients = [pymongo.MongoClient(stack.mongodb.uri) for _ in range(4)]
            with ThreadPoolExecutor(4) as pool:
                parallel = rate(
                    args.operations,
                    lambda: list(
                        pool.map(
                            update_if,
                            [keys[i::4] for i in range(4)],
                            [c["bench"]["participants"] for c in clients],
                        )
                    ),
                )
            few = keys[: args.scanned]
            one_filter = rate(
                len(few),
                lambda: [
                    people.update_one(
                        {"organization_id": ORG, "participant_id": k, "capacity": {"$gt": 0}},
                        {"$inc": {"capacity": -1}},
                    )
                    for k in few
                ],
            )
        finally:
            stack.stop()
    heading = f"measure ({args.documents:,} documents)"
    print(f"{heading:<58}{'ops/s':>10}{'target':>10}  verdict")
    print(f"{'bulk load (insert_many of 5,000)':<58}{load:>10,.0f}")
    for name, value in (
        ("indexed find_one", find),
        ("conditional update_one by _id", by_id),
        ("conditional update by key (update_if: _id, then update)", by_key),
        ("  the same, 4 clients", parallel),
        ("key and condition in one filter (scans the org)", one_filter),
    ):
        verdict = "PASS" if value >= TARGET else "MISS"
        print(f"{name:<58}{value:>10,.{0 if value >= 10 else 2}f}{TARGET:>10,.0f}  {verdict}")
    print(f"{'reference: ping round trips':<58}{ping:>10,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
