"""A griffe extension for the API reference: read ``Example:`` docstring sections as code examples.

audiovec's docstrings head their doctests ``Example:``; griffe's Google-style parser only knows ``Examples:``
and would render the doctest lines as Markdown text. This extension renames the heading before parsing, so the
examples render as code blocks. The source files are not changed. Used from ``mkdocs.yml``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADING = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` section headings to ``Examples:`` in every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the docstring of each object as it is created."""
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE_HEADING.sub(r"\g<indent>Examples:", obj.docstring.value)
