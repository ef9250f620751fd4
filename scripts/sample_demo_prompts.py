"""Rebuild hydrascope/demo/data/*.jsonl.gz: a small seeded sample of the shared prompt corpora.

Usage: python scripts/sample_demo_prompts.py [CORPUS_DIR] [OUT_DIR]
(defaults: ../shared/data/prompts and hydrascope/demo/data). Same corpora -> same bytes.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np

#: file stem -> rows kept in the shipped sample
SAMPLE_SIZES = {"benign": 800, "jailbreak": 200, "tasks": 2000}
MAX_CHARS = 2000
SEED = 20261001


def _truncate(text: str, limit: int = MAX_CHARS) -> str:
    text = text.replace("\r\n", "\n")
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip()


def sample(corpus_dir: Path, out_dir: Path) -> dict[str, int]:
    """Write one ``<stem>.jsonl.gz`` per corpus with a stratified seeded sample.

    Parameters
    ----------
    corpus_dir : Path
        Folder holding ``benign.jsonl``, ``jailbreak.jsonl`` and ``tasks.jsonl``.
    out_dir : Path
        Folder the samples are written to.

    Returns
    -------
    dict
        Rows written per file stem.
    """
    rng = np.random.default_rng(SEED)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for stem, n in SAMPLE_SIZES.items():
        rows = [json.loads(line) for line in (corpus_dir / f"{stem}.jsonl").read_text(encoding="utf-8").split("\n") if line.strip()]
        sources = sorted({r["source"] for r in rows})
        keep: list[int] = []
        for src in sources:  # stratified by source, proportional
            idx = np.array([i for i, r in enumerate(rows) if r["source"] == src])
            k = max(1, round(n * len(idx) / len(rows)))
            keep.extend(rng.choice(idx, size=min(k, len(idx)), replace=False).tolist())
        keep = sorted(keep)[: n] if len(keep) > n else sorted(keep)
        seen: set[str] = set()
        lines = []
        for i in keep:
            text = _truncate(rows[i]["text"]).strip()
            if not text or text in seen:
                continue
            seen.add(text)
            lines.append(json.dumps({"text": text, "source": rows[i]["source"]}, ensure_ascii=False, sort_keys=True))
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        with open(out_dir / f"{stem}.jsonl.gz", "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
                gz.write(payload)
        written[stem] = len(lines)
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(__file__).resolve().parent.parent
    corpus = Path(argv[0]) if argv else root.parent / "shared" / "data" / "prompts"
    out = Path(argv[1]) if len(argv) > 1 else root / "hydrascope" / "demo" / "data"
    for stem, n in sample(corpus, out).items():
        print(f"{stem}: {n} rows -> {out / (stem + '.jsonl.gz')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
