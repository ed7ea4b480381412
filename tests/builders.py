"""Test documents built on the fly (Markdown folders, minimal PDFs), and an embedder that counts."""
from __future__ import annotations

from pathlib import Path

# A small corpus the door tests (Slack, web) answer from.
SAMPLE_DOCS = {
    "keys.md": "# API keys\n\n## Rotating your API key\n\n"
    "To rotate your API key, open Settings, choose API keys and click Rotate. "
    "The old API key keeps working for 24 hours after the rotation.\n",
    "ingest.md": "# Ingesting documents\n\n## Ingesting a folder\n\n"
    "Run docrag ingest with the path of a folder to ingest every document in it. "
    "Unchanged documents are skipped, so running the ingest again is cheap.\n",
    "limits.md": "# Rate limits\n\n## Question limits\n\n"
    "Each user may ask ten questions per minute. Each channel may ask thirty questions per minute.\n",
}


def write_docs(folder: Path, docs: dict[str, str]) -> Path:
    """Write ``{file name: text}`` into ``folder`` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A minimal valid PDF: Helvetica text drawn with Tj, one page per string ('' = no text)."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    n = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, text in enumerate(pages):
        ops = ""
        if text:
            shown = " ".join(f"({esc(line)}) Tj T*" for line in text.split("\n"))
            ops = f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET"
        stream = ops.encode("latin-1")
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info = b""
    if title:
        objs.append(f"<< /Title ({esc(title)}) >>".encode("latin-1"))
        info = b" /Info %d 0 R" % len(objs)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for k, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % k + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, info, xref)
    return bytes(out)


class CountingEmbedder:
    """The configured embedder, counting the texts it is asked to embed: what a sync re-embeds."""

    def __init__(self, inner) -> None:
        self.inner, self.texts = inner, 0
        self.name, self.dimension = inner.name, inner.dimension

    def embed_documents(self, texts):
        self.texts += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)
