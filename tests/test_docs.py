"""The documentation site and the theory page: the site builds strictly, citations point at real sections,
and every function the theory page names exists.

``mkdocs build --strict`` turns every warning into an error: a broken link or anchor between pages, a nav entry
without a file, and a docstring that mkdocstrings cannot parse (e.g. a Google-style ``Args:`` entry naming a
parameter the function does not have) all fail here, so they fail CI.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import griffe
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"
#: where citations of the theory page may appear
CITING = ("workbench", "tests", "notebooks", "benchmarks", "docs", "README.md")
CITATION = re.compile(r"docs/theory\.md#([A-Za-z0-9_-]+)")
#: dotted names in the theory page's code spans, e.g. `workbench.kernels.analytic.infinite_kernels`
CODE_NAME = re.compile(r"`(workbench(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")


def _theory_anchors() -> set[str]:
    """Anchors of the theory page's headings, as mkdocs (Python-Markdown's toc) makes them."""
    headings = re.findall(r"^#{1,6} (.+?)\s*$", THEORY.read_text(encoding="utf-8"), flags=re.M)
    return {slugify(h, "-") for h in headings}


def _citing_files():
    for entry in CITING:
        path = ROOT / entry
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for f in files:
            if f.is_file() and f.suffix in {".py", ".ipynb", ".md"} and ".venvs" not in f.parts \
                    and ".ipynb_checkpoints" not in f.parts:
                yield f


def test_mkdocs_build_strict(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    site = tmp_path / "site"
    # the pages exist: theory with its numbered sections, an API page per module, the notebooks
    theory_html = (site / "theory" / "index.html").read_text(encoding="utf-8")
    assert 'id="1-infinite-width-nngp-and-ntk-of-a-fully-connected-net"' in theory_html
    assert (site / "api" / "workbench.kernels.analytic" / "index.html").read_text(encoding="utf-8").count(
        "infinite_kernels") > 0
    assert (site / "notebooks" / "00_tour" / "index.html").is_file()


def test_theory_citations_point_at_sections():
    anchors = _theory_anchors()
    assert "3-dot-product-kernels-on-the-sphere" in anchors  # the slug rule the citations rely on
    bad = []
    for f in _citing_files():
        for anchor in CITATION.findall(f.read_text(encoding="utf-8")):
            if anchor not in anchors:
                bad.append(f"{f.relative_to(ROOT)}: #{anchor}")
    assert not bad, "citations of missing docs/theory.md sections:\n" + "\n".join(bad)


def test_no_citation_of_a_file_outside_the_repository():
    old = "THEORY" + ".md"  # spelled apart so that this file does not cite it
    found = [str(f.relative_to(ROOT)) for f in _citing_files() if old in f.read_text(encoding="utf-8")]
    assert not found, f"{old} is not in the repository; cite docs/theory.md#<section> instead: {found}"


def test_theory_names_existing_functions():
    # static analysis (griffe, the loader mkdocstrings uses): no import of jax or sympy, about a second
    package = griffe.load("workbench", search_paths=[str(ROOT)], resolve_aliases=False)
    missing = []
    for name in sorted(set(CODE_NAME.findall(THEORY.read_text(encoding="utf-8")))):
        path = name.split(".", 1)[1] if "." in name else ""
        try:
            if path:
                package[path]
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            missing.append(name)
    assert not missing, f"docs/theory.md names code that does not exist: {missing}"
