"""pipeline.job.orphans: only processes of recorded sessions whose driver died are ended."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from pipeline.job import orphans


def test_only_recorded_sessions_of_dead_drivers_are_reaped(tmp_path, monkeypatch):
    monkeypatch.setattr(orphans, "RECORDS", tmp_path / "records")
    session = str(tmp_path / "ray" / "session_2026-12-01_00-00-00_000000_1")
    other = str(tmp_path / "ray" / "session_2026-12-01_00-00-00_000000_2")
    # stand-ins for Ray daemons: processes whose command line names their session folder
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", session])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", other])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphans.RECORDS.mkdir(parents=True)
    (orphans.RECORDS / f"{dead.pid}.json").write_text(json.dumps({"pid": dead.pid, "session_dir": session}))
    # a live driver's session is left alone
    (orphans.RECORDS / "self.json").write_text(json.dumps({"pid": subprocess.os.getpid(), "session_dir": other}))
    try:
        assert orphans.reap_orphans(grace_s=5) == [victim.pid]
        victim.wait(timeout=10)
        time.sleep(0.2)
        assert bystander.poll() is None and (orphans.RECORDS / "self.json").exists()
        assert not (orphans.RECORDS / f"{dead.pid}.json").exists()
    finally:
        bystander.kill()
        victim.kill()
