"""The public surface: __all__ lists exactly the public names, lazy names cost nothing at import, one error tree."""

from __future__ import annotations

import inspect
import subprocess
import sys

import audiovec
from audiovec import errors


def test_all_is_exactly_the_public_names():
    # submodules become attributes once imported (by any test); they are not part of __all__, except errors.
    # Lazy names (Benchmark, FaissStore...) appear in the module's namespace once used.
    eager = {
        n for n, v in vars(audiovec).items() if not n.startswith("_") and not inspect.ismodule(v) and n != "annotations"
    }
    lazy = set(audiovec._LAZY)
    assert set(audiovec.__all__) == (eager - lazy) | lazy
    assert lazy <= set(dir(audiovec)) and set(audiovec.__all__) <= set(dir(audiovec))
    assert inspect.ismodule(audiovec.errors)
    for name in audiovec.__all__:
        assert getattr(audiovec, name) is not None
    assert audiovec.Benchmark.__name__ == "Benchmark" and audiovec.FaissStore.__name__ == "FaissStore"


def test_import_audiovec_loads_nothing_until_a_name_is_used():
    code = (
        "import sys, audiovec\n"
        "assert [m for m in sys.modules if m.startswith('audiovec')] == ['audiovec'], sorted(sys.modules)\n"
        "assert 'numpy' not in sys.modules and 'importlib.metadata' not in sys.modules\n"
        "print(audiovec.load.__module__, audiovec.__version__ != '', audiovec.errors.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["audiovec.audio._io", "True", "audiovec.errors"]


def test_import_is_light_and_lazy_names_resolve_on_use():
    code = (
        "import sys, audiovec\n"
        "heavy = ['torch', 'tensorflow', 'faiss', 'pymilvus', 'pandas', 'sklearn', 'fastapi']\n"
        "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]\n"
        "from audiovec import Benchmark, Identifier, Ingest, extract\n"
        "assert 'pandas' not in sys.modules  # the benchmark needs pandas when it runs, not when it is named\n"
        "print(Benchmark.__module__, Identifier.__module__, Ingest.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["audiovec.benchmark.runner", "audiovec.identify.identifier", "audiovec.ingest.engine"]


def test_python_dash_m_and_version():
    proc = subprocess.run([sys.executable, "-m", "audiovec", "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == f"audiovec {audiovec.__version__}"


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
    assert issubclass(errors.UnsupportedUploadError, errors.AudioError)
    assert issubclass(errors.CollectionNotFoundError, LookupError)


def test_version_matches_metadata():
    from importlib.metadata import version

    assert audiovec.__version__ == version("audiovec")
