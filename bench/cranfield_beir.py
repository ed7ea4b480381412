"""The Cranfield collection (1,400 aerodynamics abstracts, 225 queries, judged) as a BEIR folder.

    python bench/cranfield_beir.py [OUT_DIR]     # prints the folder; then bench/retrieval_eval.py OUT_DIR

Cranfield is the classic public IR test collection; here it is read from a public repository
snapshot brought by the session search tool's ``fetch`` (/work/.mirror/Chetan-Prasad+IR-Lucene_Cran,
files cran.all.1400, cran.qry, cranqrel) and written, once, into the corpus cache beside the
corpora of bench/corpus_cache.py. Nothing of it is committed.

Two quirks of the original files: queries are numbered 1..225 in qrels but carry other numbers in
cran.qry (their order is what matches), and relevance -1 means "of no interest" (left out here);
1 to 4 are degrees of relevance, all counted relevant (retrieval_eval scores binary relevance).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus_cache import cache_root  # noqa: E402

MIRROR = Path("/work/.mirror/Chetan-Prasad+IR-Lucene_Cran/repo")


def _file(name: str) -> str:
    return subprocess.run(["git", "--git-dir", str(MIRROR), "show", f"HEAD:{name}"], check=True,
                          capture_output=True, text=True).stdout


def _records(text: str) -> list[tuple[str, dict[str, str]]]:
    """``.I id`` records, each a dict of its ``.X`` fields (T title, A authors, B source, W text)."""
    records: list[tuple[str, dict[str, str]]] = []
    field = None
    for line in text.splitlines():
        if line.startswith(".I "):
            records.append((line[3:].strip(), {}))
            field = None
        elif len(line) == 2 and line.startswith("."):
            field = line[1]
            records[-1][1][field] = ""
        elif field is not None:
            records[-1][1][field] += line.strip() + " "
    return records


def write_beir(out: Path) -> Path:
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for doc_id, fields in _records(_file("cran.all.1400")):
            title = fields.get("T", "").strip().rstrip(" .")
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": fields.get("W", "").strip()}) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as handle:
        for number, (_, fields) in enumerate(_records(_file("cran.qry")), start=1):
            handle.write(json.dumps({"_id": str(number), "text": fields.get("W", "").strip()}) + "\n")
    with open(out / "qrels" / "test.tsv", "w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for line in _file("cranqrel").splitlines():
            query, doc, relevance = line.split()[:3]
            if int(relevance) > 0:
                handle.write(f"{query}\t{doc}\t{relevance}\n")
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else cache_root() / "cranfield-beir"
    if not (out / "qrels" / "test.tsv").is_file():
        write_beir(out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
