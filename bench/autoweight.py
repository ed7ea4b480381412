"""A vector weight per collection, chosen from the collection alone; reported on labelled test halves.

    python bench/retrieval_eval.py SET ... --json runs/SET.json --pseudo 150   # once per set
    python bench/autoweight.py runs/*.json

For each set: the pseudo-queries of bench/pseudo_queries.py (no labelled question is used) are fused
with each weight of GRID; the weight with the highest pseudo nDCG@10 is the collection's (ties go to
the one nearest the fixed default). Then the labelled test half is scored with that weight, beside
both legs and the fixed default. Pseudo-query kinds: heading, sentence (own chunk left out), both, and
sentence-kept (own chunk kept, for comparison).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import table  # noqa: E402
from bench.fusion_choice import load, ndcg  # noqa: E402
from bench.retrieval_eval import documents_in_order, score  # noqa: E402
from core.search.fusion import convex_combination_fusion, vector_weight_for  # noqa: E402

GRID = [round(w / 10, 1) for w in range(7)]
KINDS = ("heading", "sentence", "both", "sentence-kept")


def fuse(pair, weight: float):
    return convex_combination_fusion(list(pair), (weight, 1 - weight))


def pseudo_ndcg(run: dict, kind: str, weight: float) -> float:
    values = []
    for entry in run["pseudo"].values():
        if kind not in ("both", entry["kind"]) and not (kind == "sentence-kept" and entry["kind"] == "sentence"):
            continue
        own = entry["chunk"]
        legs = [[tuple(p) for p in leg] for leg in entry["legs"]]
        if entry["kind"] == "sentence" and kind != "sentence-kept":  # the exact copy would only flatter the text leg
            legs = [[p for p in leg if p[0] != own] for leg in legs]
        ranked = documents_in_order(fuse(legs, weight), run["document_of"])
        values.append(score(ranked, {run["document_of"][own]})["ndcg@10"])
    return sum(values) / len(values) if values else 0.0


def choose(run: dict, kind: str, prior: float) -> tuple[float, list[float]]:
    curve = [pseudo_ndcg(run, kind, w) for w in GRID]
    top = max(curve)
    weight = min((w for w, v in zip(GRID, curve) if v >= top - 1e-9), key=lambda w: abs(w - prior))
    return weight, curve


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("runs", nargs="+", help="JSON files written by bench/retrieval_eval.py --json F --pseudo N")
    paths = parser.parse_args(argv).runs
    runs = []
    for path in paths:
        run = load(Path(path))
        run["pseudo"] = json.loads(Path(path).read_text())["replay"]["pseudo"]
        runs.append(run)
    prior = vector_weight_for(runs[0]["embedder"])
    rows, curves, totals = [], [], {"fixed": [], **{k: [] for k in KINDS}}
    for run in sorted(runs, key=lambda r: r["set"]):
        text = ndcg(run, lambda p: p[1])["test"]
        vector = ndcg(run, lambda p: p[0])["test"]
        fixed = ndcg(run, lambda p: fuse(p, prior))["test"]
        row = [run["set"], text, vector, fixed]
        totals["fixed"].append(fixed - max(text, vector))
        for kind in KINDS:
            weight, curve = choose(run, kind, prior)
            hybrid = ndcg(run, lambda p, w=weight: fuse(p, w))["test"]
            row += [weight, hybrid]
            totals[kind].append(hybrid - max(text, vector))
            curves.append([run["set"], kind, *curve])
        rows.append(row)
    headers = ["set", "text", "vector", f"w={prior:g}"] + [h for k in KINDS for h in (f"{k} w", f"{k} nDCG")]
    print("test-half nDCG@10; the self-chosen weight from pseudo-queries only")
    print(table(headers, rows))
    mean = lambda col: sum(r[col] for r in rows) / len(rows)  # noqa: E731
    print(f"mean: fixed {mean(3):.3f}; " + "; ".join(f"{k} {mean(5 + 2 * i):.3f}" for i, k in enumerate(KINDS)))
    print("worst margin over the better leg: " + "; ".join(f"{k} {min(v):+.3f} ({sum(x >= 0 for x in v)}/{len(v)} >= 0)" for k, v in totals.items()))
    print("\npseudo nDCG@10 by weight")
    print(table(["set", "kind", *[f"{w:g}" for w in GRID]], curves))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
