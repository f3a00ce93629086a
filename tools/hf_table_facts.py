"""Print each named hub model's parameter count and embedding width computed from its ``arch``
(src/medimeta/models/hf/backbones.yaml) next to the table's values; ``--write`` puts the
computed values into the table. Runs offline (meta device, no weights).

Usage: PYTHONPATH=src python tools/hf_table_facts.py [--write]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from medimeta.models.hf.facts import arch_facts
from medimeta.models.hf.table import TABLE_FILE, named_models

TABLE = Path(__file__).resolve().parents[1] / "src/medimeta/models/hf" / TABLE_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the computed values")
    args = parser.parse_args()
    text = TABLE.read_text(encoding="utf-8")
    for entry in named_models().values():
        params, width = arch_facts(entry)
        flag = "" if (params, width) == (entry.params, entry.embed_dim) else "  <- differs"
        print(
            f"{entry.name:34s} params {params:>13,d} (table {entry.params:>13,d})  "
            f"dim {width:>5d} (table {entry.embed_dim:>5d}){flag}"
        )
        if args.write:
            block = re.compile(rf"(- name: {re.escape(entry.name)}\n(?:  .*\n)*?)  params: \d+")
            text = block.sub(rf"\g<1>  params: {params}", text, count=1)
    if args.write:
        TABLE.write_text(text, encoding="utf-8")
        print(f"wrote {TABLE}")


if __name__ == "__main__":
    main()
