"""Choose the fusion's vector weight per embedder kind on the dev halves of several sets; report test.

    python bench/retrieval_eval.py SET --embedder KIND --json runs/SET-KIND.json   # once per set and kind
    python bench/fusion_choice.py runs/*.json

Each file holds one set's legs for one embedder, as retrieval_eval fetched them; here they are fused
again for every fusion, candidate depth and vector weight of the sweep, without ingesting again.

The rule, per embedder kind: on every set's dev half, take hybrid nDCG@10 minus the better leg's;
find the setting whose worst such margin over the sets is highest (hybrid must never lose to a
leg), then choose the highest mean dev nDCG@10 among settings within 0.02 of that worst margin:
dev halves hold 15 to 112 questions, and one question whose answer drops from first to second place
moves a 15-question half by 0.025, so smaller differences are not evidence. Test halves are only
reported, never used to choose.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import table  # noqa: E402
from bench.retrieval_eval import (  # noqa: E402
    SWEEP_DEPTHS,
    SWEEP_FUSIONS,
    SWEEP_WEIGHTS,
    documents_in_order,
    fused_with,
    mean_scores,
)
from core.search.fusion import vector_weight_for  # noqa: E402
from core.search.retrieval import CANDIDATES_PER_LEG  # noqa: E402

TIE = 0.02  # below one question's worth on the smallest dev half (see the module docstring)


def load(path: Path) -> dict:
    run = json.loads(path.read_text())
    replay = run["replay"]
    run["legs"] = {q: tuple([tuple(pair) for pair in leg] for leg in legs) for q, legs in replay["legs"].items()}
    run["document_of"] = {int(c): d for c, d in replay["document_of"].items()}
    run["eval_set"] = SimpleNamespace(qrels={q: set(r) for q, r in replay["qrels"].items()}, split=replay["split"])
    return run


def ndcg(run: dict, fused_of) -> dict[str, float]:
    rankings = {q: documents_in_order(fused_of(pair), run["document_of"]) for q, pair in run["legs"].items()}
    return {split: scores["ndcg@10"] for split, scores in mean_scores(rankings, run["eval_set"]).items()}


def choose(runs: list[dict]) -> None:
    kind = runs[0]["embedder"]
    legs = {r["set"]: {"text": ndcg(r, lambda p: p[1]), "vector": ndcg(r, lambda p: p[0])} for r in runs}
    best_leg = {s: {split: max(v["text"][split], v["vector"][split]) for split in ("dev", "test", "all")} for s, v in legs.items()}
    grid: dict[tuple, dict[str, dict[str, float]]] = defaultdict(dict)
    for run in runs:
        for fusion in SWEEP_FUSIONS:
            for depth in SWEEP_DEPTHS:
                for weight in SWEEP_WEIGHTS:
                    grid[(fusion, depth, weight)][run["set"]] = ndcg(run, lambda p: fused_with(p, fusion, weight, depth))

    def worst_margin(key, split="dev") -> float:
        return min(grid[key][s][split] - best_leg[s][split] for s in grid[key])

    def mean(key, split="dev") -> float:
        return sum(grid[key][s][split] for s in grid[key]) / len(grid[key])

    sets = sorted(legs)
    print(f"\n== {kind}: {len(sets)} sets ({', '.join(sets)})")
    ranked = sorted(grid, key=lambda k: -worst_margin(k))
    top = worst_margin(ranked[0])
    chosen = max((k for k in grid if worst_margin(k) >= top - TIE), key=mean)
    default_key = ("convex", CANDIDATES_PER_LEG)
    on_default = [k for k in grid if k[:2] == default_key]
    top_default = max(worst_margin(k) for k in on_default)
    chosen_default = max((k for k in on_default if worst_margin(k) >= top_default - TIE), key=mean)
    rows = []
    for key in sorted(grid, key=lambda k: (-worst_margin(k), -mean(k)))[:8] + [k for k in on_default]:
        rows.append([*key, worst_margin(key), mean(key), worst_margin(key, "test"), mean(key, "test")])
    print("settings by worst dev margin over the sets (hybrid - better leg), then the default fusion and depth:")
    print(table(["fusion", "depth", "weight", "dev worst", "dev mean", "test worst", "test mean"], rows))
    print(f"chosen over everything: {chosen}; with the default convex fusion at depth {CANDIDATES_PER_LEG}: {chosen_default};"
          f" in force now: weight {vector_weight_for(kind)}")
    now = (*default_key, vector_weight_for(kind))
    out = []
    for name in sets:
        for split in ("dev", "test"):
            out.append([name, split, legs[name]["text"][split], legs[name]["vector"][split],
                        grid[("convex", CANDIDATES_PER_LEG, 0.5)][name][split],
                        grid.get(now, grid[chosen_default])[name][split], grid[chosen][name][split]])
    print(table(["set", "split", "text", "vector", "hybrid w=0.5", f"hybrid w={now[2]:g}", f"{chosen[0]} {chosen[1]} w={chosen[2]:g}"], out))


def main(argv: list[str]) -> int:
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for path in argv:
        run = load(Path(path))
        by_kind[run["embedder"]].append(run)
    for runs in by_kind.values():
        choose(sorted(runs, key=lambda r: r["set"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
