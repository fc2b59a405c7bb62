"""Path patterns: metadata fields parsed from a file's path, for ``audiovec index --label-from`` and datasets.

A pattern names fields in the path relative to the folder given, e.g. ``"{label}/*"`` (the folder a file is in),
``"{digit}_{speaker}_*"`` (parts of the file name, as in ``7_jackson_32.wav``) or ``"{genre}/**/*"``. ``{name}``
matches one or more characters within one path component (as few as possible), ``*`` any characters within one
component, ``**`` any number of components; the pattern matches the end of the path, and the file's extension
may be left out. A regular expression with named groups (``(?P<label>...)``) is also accepted.

Example:
    >>> from audiovec.ingest import PathPattern
    >>> PathPattern("{group}/{fsid}-{label}-*")("fold3/7061-6-0-0.wav")
    {'group': 'fold3', 'fsid': '7061', 'label': '6'}
"""

from __future__ import annotations

import re

from audiovec.errors import ConfigError

__all__ = ["PathPattern"]

_FIELD_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}\Z")


class PathPattern:
    """Metadata fields parsed from a file's path (see the module docs for the syntax).

    Args:
        pattern: A ``{field}``/``*``/``**`` template or a regular expression with named groups.

    Example:
        >>> PathPattern("{digit}_{speaker}_*")("recordings/7_jackson_32.wav")
        {'digit': '7', 'speaker': 'jackson'}
        >>> PathPattern("{label}/*")("dog/bark_01.flac")
        {'label': 'dog'}

    Raises:
        ConfigError: An invalid pattern, no field in it, or a field name that is not a metadata key.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        source = pattern if "(?P<" in pattern else _template(pattern)
        try:
            self._re = re.compile(source)
        except re.error as err:
            raise ConfigError(f"invalid path pattern {pattern!r}: {err}") from None
        names = list(self._re.groupindex)
        if not names:
            raise ConfigError(f"path pattern {pattern!r} names no field (write e.g. '{{label}}/*')")
        for name in names:
            if not _FIELD_RE.match(name):
                raise ConfigError(f"path pattern field {name!r} is not a metadata key (letters, digits, '_')")

    @property
    def fields(self) -> list[str]:
        """The field names, in the order they appear in the pattern."""
        return list(self._re.groupindex)

    def __call__(self, relative: str) -> dict[str, str]:
        """The fields of a path (relative, ``/``-separated); empty when the path does not match."""
        m = self._re.search(relative)
        return {k: v for k, v in m.groupdict().items() if v is not None} if m else {}

    def __repr__(self) -> str:
        return f"PathPattern({self.pattern!r})"


def _template(pattern: str) -> str:
    """A ``{field}``/``*``/``**`` template as a regular expression that matches the end of a path."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "{":
            end = pattern.find("}", i)
            if end < 0:
                raise ConfigError(f"unclosed '{{' in path pattern {pattern!r}")
            out.append(f"(?P<{pattern[i + 1 : end]}>[^/]+?)")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "(?:^|/)" + "".join(out) + r"(?:\.[^/.]*)?\Z"
