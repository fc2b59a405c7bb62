"""The public surface: __all__ lists exactly the public names, and the error tree is one hierarchy."""

from __future__ import annotations

import inspect

import audiovec
from audiovec import errors


def test_all_is_exactly_the_public_names():
    public = {n for n in dir(audiovec) if not n.startswith("_")} - {
        # submodules are reachable as attributes once imported; they are not part of __all__
        "audio",
        "embedders",
        "embeddings",
        "pooling",
        "testing",
        "extract",
        "data",
        "cli",
        "stores",
        "annotations",  # from __future__ import annotations
    }
    assert set(audiovec.__all__) - {"__version__"} == public
    for name in audiovec.__all__:
        assert getattr(audiovec, name) is not None


def test_error_tree_is_rooted_and_documented():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert set(errors.__all__) == {c.__name__ for c in classes}
    for cls in classes:
        assert issubclass(cls, errors.AudiovecError)
        assert cls.__doc__, cls
        assert cls.__name__ in errors.__doc__, f"{cls.__name__} missing from the hierarchy in errors.__doc__"
    assert issubclass(errors.AudioFileNotFoundError, FileNotFoundError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert issubclass(errors.UnsupportedFormatError, errors.AudioDecodeError)


def test_version_matches_metadata():
    from importlib.metadata import version

    assert audiovec.__version__ == version("audiovec")
