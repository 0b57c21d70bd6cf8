"""The repository stands on its own: a comment or doc explains its reason in place, never by pointing at a list of
traps kept outside the repository, and no package docstring still describes the project as unbuilt."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A citation looks like the outside file's name followed by an item number.
OUTSIDE_CITATION = re.compile(r"\bPITFALLS\b\s*\d")
STALE = re.compile(r"Empty until the \w+ issue|arrive with the \w+ and \w+ issues")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    suffixes = {".py", ".md", ".yaml", ".yml", ".toml", ".ipynb", ".cfg", ".txt", ""}
    return [ROOT / name for name in listed if Path(name).suffix in suffixes and (ROOT / name).is_file()]


def test_repository_knowledge_no_comment_cites_an_outside_list_of_traps():
    citing = [f"{path.relative_to(ROOT)}:{number}" for path in tracked_text_files()
              for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
              if OUTSIDE_CITATION.search(line)]
    assert citing == []


def test_repository_knowledge_package_docstrings_describe_what_is_there():
    stale = [str(path.relative_to(ROOT)) for path in ROOT.glob("*/__init__.py") if STALE.search(path.read_text())]
    assert stale == []
