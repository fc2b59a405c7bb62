"""The documentation cannot rot: links resolve, named modules exist, every page is in the site's navigation.

Reads README.md, docs/**/*.md and mkdocs.yml as text (no mkdocs needed). Module paths are resolved on the
file system below the installed ``audiovec`` package and names inside a module by parsing its source, so
nothing is imported (optional backends such as torch or TensorFlow need not be installed).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.rglob("*.md")])

# Dotted names in backticks that start with ``audiovec.`` but are not Python paths.
NOT_PYTHON_PATHS = frozenset({"audiovec.next_id"})  # a Milvus collection property key (docs/milvus.md)

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_DOTTED = re.compile(r"(?<![\w./-])audiovec(?:\.[A-Za-z_]\w*)+")
_DIRECTIVE = re.compile(r"^:::\s+(\S+)", re.MULTILINE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _prose_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The lines of a Markdown file outside fenced code blocks, numbered from 1."""
    fence: str | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            yield number, line


def _prose(path: Path) -> str:
    """The text outside fenced code blocks, with fenced lines blanked (line numbers are kept)."""
    lines = dict(_prose_lines(path))
    count = len(path.read_text(encoding="utf-8").splitlines())
    return "\n".join(lines.get(n, "") for n in range(1, count + 1))


def _links(path: Path) -> list[tuple[int, str]]:
    """``(line, target)`` of every inline link and image outside code, in page order."""
    text = _CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), _prose(path))
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _LINK.finditer(text)]


def _code_spans(path: Path) -> list[tuple[int, str]]:
    """``(line, content)`` of every inline code span outside fenced code blocks."""
    return [(n, m.group(2)) for n, line in _prose_lines(path) for m in _CODE_SPAN.finditer(line)]


def _plain_heading(text: str) -> str:
    """A heading's text as rendered: code spans, links and emphasis markers removed."""
    text = _CODE_SPAN.sub(lambda m: m.group(2).strip(), text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"(?<!\w)[*_]+|[*_]+(?!\w)", "", text)


def _slug_mkdocs(text: str) -> str:
    """Python-Markdown's ``toc`` slug (the site)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _slug_github(text: str) -> str:
    """GitHub's heading anchor (README.md and the pages as shown on GitHub)."""
    return re.sub(r" ", "-", re.sub(r"[^\w\- ]", "", text.strip().lower()))


@cache
def _anchors(path: Path) -> frozenset[str]:
    """Every anchor a page's headings get on the site or on GitHub, numbered repeats included."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in _prose_lines(path):
        match = _HEADING.match(line)
        if not match:
            continue
        text = _plain_heading(match.group(1))
        for slug, sep in ((_slug_mkdocs(text), "_"), (_slug_github(text), "-")):
            repeat = seen.get(sep + slug, 0)
            seen[sep + slug] = repeat + 1
            anchors.add(f"{slug}{sep}{repeat}" if repeat else slug)
    return frozenset(anchors)


def _link_problem(page: Path, target: str) -> str | None:
    """Why a relative link does not resolve, or ``None`` when it does (or is not relative)."""
    if _SCHEME.match(target) or target.startswith("//"):
        return None
    file_part, _, anchor = target.partition("#")
    dest = page if not file_part else (page.parent / file_part).resolve()
    if not dest.exists():
        return f"{target}: no such file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}"
    if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
        return f"{target}: no heading with anchor #{anchor} in {_rel(dest)}"
    return None


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_relative_link_resolves(page: Path) -> None:
    problems = [
        f"{_rel(page)}:{line}: {problem}"
        for line, target in _links(page)
        if (problem := _link_problem(page, target)) is not None
    ]
    assert not problems, "broken links:\n" + "\n".join(problems)


@cache
def _package_dir() -> Path:
    spec = importlib.util.find_spec("audiovec")  # finds the installed package without importing it
    assert spec is not None and spec.submodule_search_locations, "audiovec is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def _source_of(module: str, level: int, importer: Path) -> Path:
    """The source file of an ``audiovec`` module named in an import statement of ``importer``."""
    if level:
        base = importer.parent
        for _ in range(level - 1):
            base = base.parent
        parts = module.split(".") if module else []
    else:
        base, parts = _package_dir().parent, module.split(".")
    path = base.joinpath(*parts)
    return path / "__init__.py" if (path / "__init__.py").is_file() else path.with_suffix(".py")


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """A module's top-level statements, those inside ``if``/``try``/``with`` blocks included."""
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.Try | ast.With):
            for block in ("body", "orelse", "finalbody", "handlers"):
                yield from _top_level(getattr(node, block, []))
        elif isinstance(node, ast.ExceptHandler):
            yield from _top_level(node.body)


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


@cache
def _module_names(source: Path) -> frozenset[str]:
    """The names a module binds at top level (defs, classes, assignments, imports, star imports), the names in
    its ``__all__``, and, in a module with a lazy ``__getattr__``, the names that function and its tables serve.
    """
    tree = ast.parse(source.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in _top_level(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            names |= _module_names(_source_of(node.module or "", node.level, source))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            names |= bound
            if "__all__" in bound and node.value is not None:
                names |= _strings(node.value)
    if "__getattr__" in names:  # lazily exported names: the keys and comparisons of the lazy loader
        names |= {s for s in _strings(tree) if s.isidentifier()}
    return frozenset(names)


def _python_path_problem(dotted: str) -> str | None:
    """Why ``audiovec.x.y`` names no module (or no name in its module), or ``None`` when it does."""
    parts = dotted.split(".")
    here, module = _package_dir(), _package_dir() / "__init__.py"
    for index, part in enumerate(parts[1:], start=1):
        if module.name == "__init__.py" and (here / part / "__init__.py").is_file():
            here, module = here / part, here / part / "__init__.py"
        elif module.name == "__init__.py" and (here / part).with_suffix(".py").is_file():
            module = (here / part).with_suffix(".py")
        elif part in _module_names(module):
            return None  # a name defined in the module; what follows it (a method, a field) is not checked
        else:
            where = module.relative_to(_package_dir().parent).as_posix()
            return f"{'.'.join(parts[: index + 1])} is neither a module nor a name in {where}"
    return None


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_named_audiovec_module_exists(page: Path) -> None:
    named = [(n, m.group(0)) for n, span in _code_spans(page) for m in _DOTTED.finditer(span)]
    named += [(0, m.group(1)) for m in _DIRECTIVE.finditer(_prose(page))]
    problems = [
        f"{_rel(page)}:{line}: `{dotted}`: {problem}"
        for line, dotted in named
        if dotted not in NOT_PYTHON_PATHS and (problem := _python_path_problem(dotted)) is not None
    ]
    assert not problems, "unknown audiovec names:\n" + "\n".join(problems)


def _nav_pages() -> list[str]:
    """The pages listed in mkdocs.yml's ``nav`` (read as text: PyYAML is not a test dependency)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:\n", 1)[1]
    nav = re.split(r"\n(?=\S)", nav, maxsplit=1)[0]
    return re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?(\S+\.md)\s*$", nav, re.MULTILINE)


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    nav = _nav_pages()
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert sorted(pages - set(nav)) == [], "docs pages missing from mkdocs.yml nav"
    assert sorted(set(nav) - pages) == [], "mkdocs.yml nav entries with no page in docs/"
    assert len(nav) == len(set(nav)), "pages listed twice in mkdocs.yml nav"


def test_index_links_every_page() -> None:
    linked = {(DOCS / target.partition("#")[0]).resolve() for _, target in _links(DOCS / "index.md")}
    missing = [_rel(p) for p in DOCS.rglob("*.md") if p.name != "index.md" and p.resolve() not in linked]
    assert missing == [], "docs/index.md does not link these pages"


def test_checks_catch_breakage(tmp_path: Path) -> None:
    """The checks themselves: a missing page, a missing anchor and an unknown module are all reported."""
    assert _link_problem(DOCS / "index.md", "nope.md") is not None
    assert _link_problem(DOCS / "index.md", "stores.md#no-such-heading") is not None
    assert _link_problem(DOCS / "index.md", "stores.md#writing-a-store-plugin") is None
    assert _python_path_problem("audiovec.stores.no_such_module") is not None
    assert _python_path_problem("audiovec.nosuch") is not None
    assert _python_path_problem("audiovec.stores.filters.to_milvus_expr") is None
    assert _python_path_problem("audiovec.embedders.hf") is None
    assert _python_path_problem("audiovec.Benchmark") is None  # served lazily by ``__getattr__``
    assert _python_path_problem("audiovec.audio.MIN_SAMPLE_RATE") is None  # re-exported by a star import
    page = tmp_path / "p.md"
    page.write_text("```\n[a](missing.md)\n```\nsee `[b](gone.md)` and [c](real.md)\n", encoding="utf-8")
    assert _links(page) == [(4, "real.md")]
