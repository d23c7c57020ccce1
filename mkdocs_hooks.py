"""mkdocs hooks for the documentation site (``mkdocs.yml``: ``hooks: [mkdocs_hooks.py]``).

* The API reference is generated from the package itself: one page per public module or package of
  ``workbench/`` (a ``::: workbench.x.y`` mkdocstrings directive), found by walking the source tree, so a
  module that is added, split or moved appears without editing ``mkdocs.yml``. Private modules (a name
  starting with ``_``) and ``__main__`` are left out.
* The notebooks in ``notebooks/`` (outside ``docs/``) are added as pages, rendered by mkdocs-jupyter
  without executing them; they are committed without outputs, so the pages show code and text.
* Optional pages (``docs/SCALING.md`` and any other page listed in :data:`OPTIONAL`) enter the navigation
  only when the file exists.
* Citations ``docs/theory.md#<anchor>`` in docstrings and notebooks become links to that section of the theory
  page (``tests/test_docs.py`` checks that every cited anchor exists).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url

log = logging.getLogger("mkdocs.hooks.workbench")

ROOT = Path(__file__).resolve().parent
PACKAGE = "workbench"
#: (nav title, file under docs/) entered after "Architecture" only when the file exists
OPTIONAL = [("Scaling", "SCALING.md")]


def public_modules(root: Path = ROOT, package: str = PACKAGE) -> list[str]:
    """Dotted names of the package's public modules and packages, sorted (packages before their modules)."""
    names = []
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts) or parts[-1] == "__main__":
            continue
        names.append(".".join(parts))
    return sorted(set(names), key=lambda n: n.split("."))


def api_page(module: str) -> str:
    return f"# `{module}`\n\n::: {module}\n"


def _api_uri(module: str) -> str:
    return f"api/{module}.md"


def _notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").rglob("*.ipynb"))


def on_config(config):
    nav = config.get("nav") or []
    docs = Path(config["docs_dir"])
    extra = [{title: uri} for title, uri in OPTIONAL if (docs / uri).exists()]
    notebooks = [{p.stem: p.relative_to(ROOT).as_posix()} for p in _notebooks()
                 if ".ipynb_checkpoints" not in p.parts]
    api = [{name: _api_uri(name)} for name in public_modules()]
    out = []
    for entry in nav:
        key = next(iter(entry)) if isinstance(entry, dict) else None
        if key == "Notebooks":
            out.append({"Notebooks": notebooks})
        elif key == "API reference":
            out.append({"API reference": api})
        else:
            out.append(entry)
            if key == "Architecture":
                out.extend(extra)
    config["nav"] = out
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which wraps the .ipynb files into notebook pages
def on_files(files, config):
    for name in public_modules():
        files.append(File.generated(config, _api_uri(name), content=api_page(name)))
    for path in _notebooks():
        if ".ipynb_checkpoints" in path.parts:
            continue
        files.append(File(path.relative_to(ROOT).as_posix(), str(ROOT), config["site_dir"],
                          config["use_directory_urls"]))
    return files


#: a plain-text citation, not already part of a URL or an attribute
THEORY_CITATION = re.compile(r"(?<![/\w\"'#.])docs/theory\.md#([A-Za-z0-9_-]+)")


def on_page_content(html, page, config, files):
    if page.file.src_uri == "theory.md":
        return html
    theory = get_relative_url("theory/" if config["use_directory_urls"] else "theory.html", page.url or ".")
    return THEORY_CITATION.sub(lambda m: f'<a href="{theory}#{m.group(1)}">{m.group(0)}</a>', html)
