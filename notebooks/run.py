"""Execute a notebook headless against a lake and save the executed copy: `make notebook LAKE=...`.

The kernel reads the lake from $SALESPULSE_LAKE (the notebook's first cell) and runs in the repository's root, as
the test suite runs it. Figures are kept as Plotly JSON outputs (shown by Jupyter and VS Code when opened).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]


def execute_notebook(notebook: Path, lake: str, timeout: int = 300) -> nbformat.NotebookNode:
    """The notebook after running every cell against ``lake``; raises CellExecutionError naming a failing cell.
    The kernel ("python3", ipykernel's spec in this interpreter's prefix) inherits this environment."""
    os.environ["SALESPULSE_LAKE"] = lake
    os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype")
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True, help="Lake folder (paths.lake)")
    parser.add_argument("--notebook", type=Path, default=ROOT / "notebooks" / "explore.ipynb")
    parser.add_argument("--out", type=Path, help="Executed copy (default: data/notebooks/<name>.ipynb)")
    args = parser.parse_args()
    if not Path(args.lake, "_manifest.json").exists():
        sys.exit(f"notebook: no lake at {args.lake} (no _manifest.json); load data first or pass LAKE=...")
    out = args.out or ROOT / "data" / "notebooks" / args.notebook.name
    try:
        nb = execute_notebook(args.notebook, str(Path(args.lake).resolve()))
    except CellExecutionError as err:
        sys.exit(f"notebook: a cell failed:\n{err}")
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    print(f"notebook: {args.notebook.name} ran against {args.lake}; executed copy in {out}")


if __name__ == "__main__":
    main()
