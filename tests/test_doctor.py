"""`swarm doctor`: the data-cache lines (the rest of its report is plain version strings)."""

import subprocess
import sys

from swarm import doctor
from tests.support.target import REPO_ROOT


def test_data_cache_rows_tell_ready_from_missing(tiny_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))
    rows = dict(doctor.data_cache_rows(REPO_ROOT))
    assert set(rows) == {"data h100", "data tiny"}
    assert rows["data tiny"].startswith(f"ready at {tiny_cache}: source local, 2 train shards")
    assert "holds the 'tiny' profile" in rows["data h100"]

    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tmp_path))
    rows = dict(doctor.data_cache_rows(REPO_ROOT))
    assert rows["data tiny"].startswith(f"not prepared at {tmp_path}")


def run_doctor(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "swarm", "doctor"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_doctor_command_prints_the_data_lines_and_survives_a_bad_profile(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AUTORESEARCH_PROFILE": "nope"}
    proc = run_doctor(env)
    assert proc.returncode == 0, proc.stderr
    assert "unknown AUTORESEARCH_PROFILE='nope'" in proc.stdout
    env.pop("AUTORESEARCH_PROFILE")
    proc = run_doctor(env)
    assert f"not prepared at {tmp_path}/.cache/autoresearch/tiny" in proc.stdout
