"""The public surface: __all__ lists exactly the public names, and the error tree is one hierarchy."""

from __future__ import annotations

import inspect

import audiovec
from audiovec import errors


def test_all_is_exactly_the_public_names():
    # submodules become attributes once imported (by any test); they are not part of __all__, except errors
    public = {
        n for n, v in vars(audiovec).items() if not n.startswith("_") and not inspect.ismodule(v) and n != "annotations"
    }
    assert set(audiovec.__all__) - {"__version__", "FaissStore", "errors"} == public
    assert inspect.ismodule(audiovec.errors)
    assert audiovec.FaissStore.__name__ == "FaissStore"  # resolved lazily (needs faiss)
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
