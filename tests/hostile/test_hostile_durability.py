"""Durability under kill -9: what the service and ``audiovec index`` acknowledge is never lost.

A real ``audiovec serve`` process takes concurrent uploads and deletes from several clients and is killed with
SIGKILL at a random moment, then restarted: every upload answered 201 must be there with its audio, every delete
answered 204 must stay deleted, and no audio file may be left without its item.
"""

from __future__ import annotations

import pytest

from crash_service import run_trials


def _assert_durable(report) -> None:
    assert report.trials and report.acknowledged_adds > report.trials
    assert report.problems == []
    assert (report.lost, report.resurrected, report.orphan_files, report.missing_audio) == (0, 0, 0, 0)


def test_service_kill_9_loses_no_acknowledged_upload(tmp_path):
    _assert_durable(run_trials(tmp_path, trials=2))


@pytest.mark.slow
def test_service_kill_9_twenty_trials(tmp_path):
    report = run_trials(tmp_path, trials=20, seed=1)
    print(report)
    _assert_durable(report)


def test_index_kill_9_keeps_every_written_batch_without_a_checkpoint(tmp_path):
    """``audiovec index`` with no checkpoint save before the kill: the batches written are kept (journal)."""
    import subprocess
    import sys
    import textwrap

    from audiovec.service.collection import Collection
    from crash_service import wav

    sounds = tmp_path / "sounds"
    sounds.mkdir()
    for i in range(60):
        (sounds / f"{i:03d}.wav").write_bytes(wav(i, seconds=0.3))
    col_dir = tmp_path / "c"
    journal = col_dir / "store" / "journal.wal"
    script = textwrap.dedent(
        f"""
        import os, signal, time
        from pathlib import Path
        from audiovec.progress import Callback
        from audiovec.service.collection import Collection

        class KillOnceWritten(Callback):  # SIGKILL as soon as a batch is in the journal: no save has happened
            def call(self):
                time.sleep(0.05)
                if Path({str(journal)!r}).exists() and Path({str(journal)!r}).stat().st_size > 8:
                    os.kill(os.getpid(), signal.SIGKILL)

        col = Collection.create({str(col_dir)!r}, "mfcc", keep_audio=True)
        col.index([{str(sounds)!r}], workers=1, checkpoint_s=3600, progress=KillOnceWritten())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-3000:]
    with Collection.open(col_dir) as col:
        kept = col.store.count()
        assert 0 < kept < 60  # written before the kill, never saved: replayed from the journal
        assert {f.stem for f in col.audio_dir.iterdir()} == col.stored_items([f.stem for f in col.audio_dir.iterdir()])
        report = col.index([sounds], workers=1, progress=False)
        assert (report.skipped, report.added, len(report.failures)) == (kept, 60 - kept, 0)
        assert col.store.count() == 60
