"""Folder datasets labelled by path patterns, the data root of benchmark configs, and the report's dependencies."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from audiovec.benchmark import Benchmark, DatasetConfig, build_dataset, load_config
from audiovec.benchmark.datasets import FolderDataset
from audiovec.cli import main
from audiovec.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"
FOLD_FILES = ["fold1/100-3-0-0.wav", "fold1/100-3-0-1.wav", "fold2/200-6-0-0.wav", "fold3/7061-6-0-0.wav"]


def _tree(root: Path, names: list[str]) -> Path:
    """Empty files under ``root`` (a folder dataset lists files; it does not decode them)."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


def test_group_from_the_folder_and_label_from_a_field_of_the_file_name(tmp_path):
    ds = FolderDataset(_tree(tmp_path / "us8k", FOLD_FILES), fields_from="{group}/{fsid}-{label}-*")
    by_name = {Path(it.path).name: it for it in ds}
    it = by_name["7061-6-0-0.wav"]
    assert (it.group, it.label, it.metadata) == ("fold3", "6", {"fsid": "7061"})
    assert ds.labels() == {"3", "6"} and ds.groups() == {"fold1", "fold2", "fold3"}


def test_a_pattern_naming_only_the_group_keeps_the_folder_label(tmp_path):
    root = _tree(tmp_path / "set", ["kick/kitA_01.wav", "kick/kitB_01.wav", "snare/kitA_02.wav"])
    ds = FolderDataset(root, fields_from="{group}_*")
    assert sorted((it.label, it.group) for it in ds) == [("kick", "kitA"), ("kick", "kitB"), ("snare", "kitA")]


def test_a_regular_expression_works_as_well(tmp_path):
    root = _tree(tmp_path / "us8k", FOLD_FILES)
    ds = FolderDataset(root, fields_from=r"(?P<group>fold\d+)/\d+-(?P<label>\d+)-")
    assert sorted({(it.group, it.label) for it in ds}) == [("fold1", "3"), ("fold2", "6"), ("fold3", "6")]


def test_the_config_takes_the_pattern(tmp_path):
    root = _tree(tmp_path / "us8k", FOLD_FILES)
    ds = build_dataset(DatasetConfig(kind="folder", path=str(root), fields_from="{group}/{fsid}-{label}-*"))
    assert len(ds) == 4 and ds.groups() == {"fold1", "fold2", "fold3"}


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{fold}/*", "names neither {label} nor {group}"),
        ("fold*/*", "names no field"),
        ("{group}/{label", "unclosed"),
        ("(?P<label>[)", "invalid path pattern"),
    ],
)
def test_a_pattern_without_label_or_group_is_a_config_error(tmp_path, pattern, message):
    root = _tree(tmp_path / "us8k", FOLD_FILES)
    with pytest.raises(ConfigError, match=message):
        FolderDataset(root, fields_from=pattern)


def test_a_file_that_does_not_match_is_a_config_error_naming_it_and_the_pattern(tmp_path):
    root = _tree(tmp_path / "us8k", [*FOLD_FILES, "fold2/stray.wav"])
    with pytest.raises(ConfigError) as err:
        FolderDataset(root, fields_from="{group}/{fsid}-{label}-*")
    text = str(err.value)
    assert "fold2/stray.wav" in text and "'{group}/{fsid}-{label}-*'" in text and "1 of 5 files" in text


def test_group_from_a_pattern_and_a_group_regex_together_is_a_config_error(tmp_path):
    root = _tree(tmp_path / "us8k", FOLD_FILES)
    with pytest.raises(ConfigError, match="group_pattern"):
        FolderDataset(root, group_pattern=r"^(\d+)-", fields_from="{group}/*")


def test_a_bad_pattern_or_kind_fails_when_the_config_is_read(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"dataset": {"kind": "fsdd", "path": "x", "fields_from": "{label}/*"}}))
    with pytest.raises(ConfigError, match="'fields_from' is only for dataset kind 'folder'"):
        load_config(f)
    f.write_text(json.dumps({"dataset": {"kind": "folder", "path": "nowhere", "fields_from": "{fold}/*"}}))
    with pytest.raises(ConfigError, match="names neither"):
        load_config(f)


# --- the data root -------------------------------------------------------------------------------------------------


def _config(tmp_path: Path, path: str) -> Path:
    f = tmp_path / "conf" / "bench.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"dataset": {"kind": "folder", "path": path}}))
    return f


def test_relative_dataset_paths_resolve_against_the_data_root_flag(tmp_path, monkeypatch):
    _tree(tmp_path / "data" / "set", ["kick/a.wav", "snare/b.wav"])
    monkeypatch.delenv("AUDIOVEC_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(_config(tmp_path, "set"), data_root=str(tmp_path / "data"))
    ds = build_dataset(cfg.dataset, data_root=cfg.data_root)
    assert ds.labels() == {"kick", "snare"} and Path(ds[0].path).is_relative_to(tmp_path / "data" / "set")


def test_the_data_root_comes_from_the_environment_when_no_flag_is_given(tmp_path, monkeypatch):
    _tree(tmp_path / "data" / "set", ["kick/a.wav"])
    monkeypatch.setenv("AUDIOVEC_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(_config(tmp_path, "set"))
    assert build_dataset(cfg.dataset, data_root=cfg.data_root).labels() == {"kick"}


def test_a_missing_dataset_names_the_resolved_path_the_config_value_and_how_to_set_the_root(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOVEC_DATA", str(tmp_path / "nowhere"))
    cfg = load_config(_config(tmp_path, "drums/metadata.tsv"))
    with pytest.raises(ConfigError) as err:
        build_dataset(cfg.dataset, data_root=cfg.data_root)
    text = str(err.value)
    assert str(tmp_path / "nowhere" / "drums" / "metadata.tsv") in text and "'drums/metadata.tsv'" in text
    assert "AUDIOVEC_DATA" in text and "--data-root" in text


@pytest.mark.parametrize("config", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_example_configs_work_from_any_working_directory(config, shared_data, tmp_path, monkeypatch):
    monkeypatch.delenv("AUDIOVEC_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(config, data_root=str(shared_data))
    ds = build_dataset(cfg.dataset, data_root=cfg.data_root)
    assert len(ds) > 100 and len(ds.labels()) > 1 and Path(ds[0].path).is_file()
    relative = [v for e in cfg.embedders for v in e.params.values() if isinstance(v, str) and v.startswith(".")]
    assert relative == []  # a model path relative to the working directory would break from another folder


# --- the command line -----------------------------------------------------------------------------------------------


def _hide(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``package`` (and its submodules) fail to import."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)


@pytest.fixture
def runs(monkeypatch):
    """The configs :meth:`Benchmark.run` was called with (nothing is extracted)."""
    seen: list[object] = []

    def run(self: Benchmark) -> object:
        seen.append(self.config)
        raise ConfigError("stop here")

    monkeypatch.setattr(Benchmark, "run", run)
    return seen


def test_bench_checks_the_report_dependencies_before_running(tmp_path, monkeypatch, capsys, runs):
    _hide(monkeypatch, "plotly")
    assert main(["bench", "--demo", "-o", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "MissingDependencyError" in err and "plotly" in err and "audiovec[bench]" in err
    assert runs == []
    main(["bench", "--demo", "-o", str(tmp_path / "o"), "--no-progress", "--no-report"])  # no report: no plotly
    assert len(runs) == 1 and "stop here" in capsys.readouterr().err


def test_bench_takes_the_data_root_flag(tmp_path, runs):
    main(["bench", str(_config(tmp_path, "set")), "--data-root", str(tmp_path / "data"), "--no-report"])
    assert [c.data_root for c in runs] == [str(tmp_path / "data")]  # type: ignore[attr-defined]


def test_bench_refuses_a_limit_below_one_file_instead_of_running_everything(tmp_path, capsys, runs):
    assert main(["bench", "--demo", "-o", str(tmp_path / "o"), "--limit", "0", "--no-report"]) == 2
    assert runs == [] and "--limit must be at least 1 file, got 0" in capsys.readouterr().err
