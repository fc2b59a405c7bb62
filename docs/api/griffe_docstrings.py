"""A griffe extension for the API reference: read audiovec's docstrings as they are meant.

The docstrings are Google style with two habits griffe's parser does not know: doctests headed ``Example:``
(griffe knows ``Examples:`` and would render the doctest lines as Markdown text) and Sphinx roles such as
``:class:`Pipeline``` (shown as raw text by Markdown). This extension rewrites both before parsing, so examples
render as code blocks and roles as inline code. The source files are not changed. Used from ``mkdocs.yml``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADING = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)
_SPHINX_ROLE = re.compile(r":(?:py:)?(?:attr|class|data|exc|func|meth|mod|obj):`(?P<tilde>~?)(?P<target>[^`]+)`")


def _role_as_code(match: re.Match[str]) -> str:
    """``:class:`~a.b.C``` → ```C```, ``:func:`a.f``` → ```a.f``` (the tilde shows the last part only)."""
    target = match.group("target")
    return f"`{target.rsplit('.', 1)[-1] if match.group('tilde') else target}`"


def markdown_docstring(text: str) -> str:
    """A docstring with ``Example:`` headings renamed ``Examples:`` and Sphinx roles turned into code spans."""
    return _SPHINX_ROLE.sub(_role_as_code, _EXAMPLE_HEADING.sub(r"\g<indent>Examples:", text))


class GoogleDocstrings(griffe.Extension):
    """Rewrite every docstring griffe loads with :func:`markdown_docstring`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the docstring of each object as it is created."""
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
