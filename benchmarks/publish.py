"""Regenerate benchmarks/RESULTS.md sections and the README status table from the JSON results
in benchmarks/results/ (no benchmark is run).

    python benchmarks/publish.py                 # every section and the README status table
    python benchmarks/publish.py --only routing  # one section (and the table)
    python benchmarks/publish.py --no-readme     # RESULTS.md only
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchlib.bench import repo_root
from benchlib.results_docs import regenerate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=None, help="repository root (default: this checkout)")
    ap.add_argument("--only", default=None, help="regenerate only this RESULTS.md section")
    ap.add_argument("--no-readme", action="store_true", help="leave the README status table alone")
    args = ap.parse_args()
    done = regenerate(args.root or repo_root(), readme=not args.no_readme, only=args.only)
    print(f"sections: {', '.join(done['sections']) or 'none'}; kept as they were (no renderer): "
          f"{', '.join(done['kept']) or 'none'}; README status rows: {len(done['status_rows'])}")


if __name__ == "__main__":
    main()
