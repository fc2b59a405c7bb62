"""`kill -9` during `audiovec index`, then the same command again: what was kept, what the rerun added, duplicates.

Indexes a corpus (default the 100,000 files of ``benchmarks/make_corpus.py`` in /work/corpus/c100k) with
``audiovec index --workers 2 --checkpoint 30``, kills the whole process group with SIGKILL after KILL_AFTER
seconds (default 100), counts the items the collection kept, reruns the same command to completion and checks the
final count and the uniqueness of the stored ids. Writes ``benchmarks/results/scale_resume_100k.json``.

Usage: python benchmarks/resume_after_kill.py [KILL_AFTER_S] [CORPUS] [WORK_DIR]
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from audiovec import Collection

corpus = sys.argv[2] if len(sys.argv) > 2 else "/work/corpus/c100k"
col = Path(sys.argv[3] if len(sys.argv) > 3 else "/work/corpus/resume") / "col"
shutil.rmtree(col, ignore_errors=True)
cmd = [
    sys.executable,
    "-m",
    "audiovec",
    "index",
    corpus,
    "--collection",
    str(col),
    "-e",
    "mfcc",
    "--index",
    "hnsw",
    "--label-from",
    "{label}/*",
    "--workers",
    "2",
    "--checkpoint",
    "30",
    "--no-progress",
]
out = {"command": " ".join(cmd[2:]), "load_avg_start": os.getloadavg()}
t0 = time.monotonic()
p = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 100)
os.killpg(p.pid, signal.SIGKILL)
p.wait()
out["killed_after_s"] = round(time.monotonic() - t0, 1)
time.sleep(1)

with Collection.open(col) as c:
    out["stored_after_kill"] = c.store.count()
t1 = time.monotonic()
r = subprocess.run(cmd, capture_output=True, text=True)
out["resume_s"] = round(time.monotonic() - t1, 1)
out["resume_stdout"] = r.stdout.strip()
out["resume_rc"] = r.returncode
with Collection.open(col) as c:
    out["final_count"] = c.store.count()
db = next(col.rglob("*.sqlite"))
con = sqlite3.connect(db)
tables = [t for (t,) in con.execute("select name from sqlite_master where type='table'")]
out["sqlite_tables"] = tables
if "records" in tables:
    cols = [r[1] for r in con.execute("pragma table_info(records)")]
    idc = "uid" if "uid" in cols else cols[1]
    n, u = con.execute(f"select count(*), count(distinct {idc}) from records").fetchone()
    out["records"], out["unique_ids"] = n, u
out["load_avg_end"] = os.getloadavg()
print(json.dumps(out, indent=1))
(Path(__file__).parent / "results" / "scale_resume_100k.json").write_text(json.dumps(out, indent=1) + "\n")
