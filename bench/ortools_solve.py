"""The reference for `mentoring match solve`: a plain OR-Tools script doing the same job.

    python bench/ortools_solve.py pairs.csv capacities.csv matches.csv

What someone would write without the platform: read both files with the csv module, number
the ids with dicts, build OR-Tools' min-cost flow from numpy arrays (source -> mentee ->
mentor -> sink, capacities 1, 1 and the mentor's), solve_max_flow_with_min_cost (most
mentees matched, then the highest total of scores rounded to 1e-6), write matches.csv.
No validation beyond what the csv module and int()/float() do. bench/matching.py times it
beside the command, whole process, on the same files.
"""

import csv
import sys

import numpy as np
from ortools.graph.python import min_cost_flow

pairs_path, capacities_path, out_path = sys.argv[1:4]
with open(capacities_path, newline="") as f:
    rows = list(csv.reader(f))[1:]
mentor_index = {m: i for i, (m, _) in enumerate(rows)}
capacity = np.array([int(c) for _, c in rows], np.int64)
with open(pairs_path, newline="") as f:
    reader = csv.reader(f)
    next(reader)
    rows = list(reader)
mentee_col = [r[0] for r in rows]
mentor_col = [r[1] for r in rows]
score_col = [r[2] for r in rows]
mentee_index = {e: i for i, e in enumerate(dict.fromkeys(mentee_col))}
n = len(rows)
mentee = np.fromiter(map(mentee_index.__getitem__, mentee_col), np.int32, n)
mentor = np.fromiter(map(mentor_index.__getitem__, mentor_col), np.int32, n)
score = np.fromiter(map(float, score_col), np.float64, n)

n_e, n_m = len(mentee_index), len(mentor_index)
source, sink = n_e + n_m, n_e + n_m + 1
flow = min_cost_flow.SimpleMinCostFlow()
arcs = flow.add_arcs_with_capacity_and_unit_cost(
    mentee, n_e + mentor, np.ones(n, np.int64), -np.rint(score * 1e6).astype(np.int64)
)
flow.add_arcs_with_capacity_and_unit_cost(
    np.full(n_e, source, np.int32),
    np.arange(n_e, dtype=np.int32),
    np.ones(n_e, np.int64),
    np.zeros(n_e, np.int64),
)
flow.add_arcs_with_capacity_and_unit_cost(
    np.arange(n_e, n_e + n_m, dtype=np.int32),
    np.full(n_m, sink, np.int32),
    capacity,
    np.zeros(n_m, np.int64),
)
supply = int(min(n_e, capacity.sum()))
flow.set_node_supply(source, supply)
flow.set_node_supply(sink, -supply)
if flow.solve_max_flow_with_min_cost() != flow.OPTIMAL:
    sys.exit("min-cost flow not optimal")
chosen = np.flatnonzero(flow.flows(arcs) > 0)
with open(out_path, "w", newline="") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(("mentee_id", "mentor_id", "score"))
    writer.writerows((mentee_col[i], mentor_col[i], score_col[i]) for i in chosen.tolist())
