"""Pack the multi-schema text2cypher rows into the package (``finetune/data/general.jsonl.gz``).

    .venv/bin/python scripts/pack_general_data.py [--src ../shared/data/neo4jlabs_text2cypher]

The bootstrap mixes these general rows (13 public databases, none of them movies or northwind: the
source files had those removed) into every graph's training set, so the model keeps reading schemas
it was not trained on. Rows flagged on Neo4j (syntax error, timeout, false schema) are left out. Each
line holds ``question``, ``cypher``, ``database`` and ``category``; the schemas, rendered with the
product's own schema text, sit once per database in ``general_schemas.json.gz``. Licence: CC0
(neo4j-labs/text2cypher), copied beside the data.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=Path, default=ROOT.parent / "shared" / "data" / "neo4jlabs_text2cypher")
    ap.add_argument("--out", type=Path, default=ROOT / "finetune" / "data")
    args = ap.parse_args()
    from finetune.dataset import _load_schemas

    csv.field_size_limit(2**31 - 1)
    schemas = _load_schemas(args.src / "text2cypher_schemas.csv")
    texts = {db: (s if isinstance(s, str) else s.to_text()) for db, s in schemas.items()}
    rows, seen = [], set()
    for name in ("text2cypher_gpt4turbo.csv", "text2cypher_claudeopus.csv"):
        with open(args.src / name, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                flagged = any(
                    str(r.get(k, "")).strip().lower() in ("true", "1") for k in ("syntax_error", "timeout")
                )
                if flagged or str(r.get("false_schema") or "").strip() or r.get("database") not in texts:
                    continue
                key = (r["database"], r["question"].strip().lower())
                if key in seen:
                    continue
                seen.add(key)
                rows.append(
                    {
                        "question": r["question"].strip(),
                        "cypher": r["cypher"].strip(),
                        "database": r["database"],
                        "category": r.get("type") or "general",
                    }
                )
    args.out.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out / "general.jsonl.gz", "wt", encoding="utf-8", compresslevel=9) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    used = {r["database"] for r in rows}
    with gzip.open(args.out / "general_schemas.json.gz", "wt", encoding="utf-8", compresslevel=9) as f:
        json.dump({db: texts[db] for db in sorted(used)}, f, ensure_ascii=False)
    shutil.copy(args.src / "LICENSE.CC0.txt", args.out / "LICENSE.general.CC0.txt")
    print(f"{len(rows)} rows from {len(used)} databases → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
