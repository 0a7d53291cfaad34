"""`swarm doctor` on the GPU path: its CUDA, compiler and AppArmor lines, and `swarm doctor --smoke` on the
CPU (the tiny profile, compiled as on CUDA, in the real sandboxes), including the first failing stage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from swarm import doctor
from swarm.runner.sandbox import sandbox_problem
from tests.support.swarm_run import init_repo
from tests.support.target import REPO_ROOT


def test_doctor_reports_the_cuda_build_driver_compiler_and_python_h(tmp_path, monkeypatch):
    rows = dict(doctor.cuda_rows(tmp_path) + doctor.compiler_rows())
    assert rows["torch build"].startswith(("CPU only;", "CUDA "))
    assert "torch.cuda.is_available() = " in rows["torch build"]
    assert rows["driver"].startswith("no NVIDIA driver")  # no nvidia-smi on the test machine
    assert rows["compiler"] != "NONE (apt-get install gcc)" and rows["Python.h"].endswith("Python.h")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 575.51.03\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    (tmp_path / "nvidia0").write_text("")  # a GPU node, but no nvidia-uvm and no nvidia-modprobe
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    rows = dict(doctor.cuda_rows(tmp_path))
    assert rows["driver"] == "575.51.03"
    assert rows["nvidia-uvm"] == (
        f"{tmp_path}/nvidia-uvm: missing (nvidia-modprobe is missing: load nvidia-uvm with `nvidia-modprobe -u -c=0`)"
    )


def test_a_refused_bwrap_gets_the_apparmor_remedy(tmp_path):
    knob = tmp_path / "apparmor_restrict_unprivileged_userns"
    knob.write_text("1\n")
    assert "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in doctor.apparmor_remedy(knob)
    knob.write_text("0\n")
    assert doctor.apparmor_remedy(knob) == "" and doctor.apparmor_remedy(tmp_path / "none") == ""


def smoke(repo: Path, cache: Path, timeout: float = 1500, **extra: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AUTORESEARCH_CACHE_DIR": str(cache),
        "PYTHONPATH": str(REPO_ROOT),
        "OMP_NUM_THREADS": "1",
        **extra,
    }
    env.pop("AUTORESEARCH_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "swarm", "doctor", "--smoke", "--profile", "tiny"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def target_repo(tmp_path) -> Path:
    """A repository holding this checkout's train.py and prepare.py, as a user's clone does."""
    files = {name: (REPO_ROOT / name).read_text() for name in ("train.py", "prepare.py")}
    init_repo(tmp_path / "repo", files)
    return tmp_path / "repo"


def test_smoke_names_the_first_failing_stage(target_repo, tmp_path):
    done = smoke(target_repo, tmp_path / "no-cache", timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "smoke cpu0: 3 steps of the tiny profile's model, compiled, bf16 autocast" in done.stdout
    assert "cpu0: FAILED at data: " in done.stdout and "Traceback" not in done.stderr


@pytest.mark.slow  # the smoke test's sealed run
@pytest.mark.skipif(sandbox_problem() is not None, reason=f"{sandbox_problem()}")
def test_smoke_on_a_gpu_slot_without_cuda_fails_at_train_py_with_its_cause(target_repo, tiny_cache):
    done = smoke(target_repo, tiny_cache, timeout=300, SWARM_FAKE_GPUS="1")  # a GPU, but torch finds none
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == "smoke 0: 3 steps of the tiny profile's model, on CUDA, sealed"
    assert (
        "0: FAILED at train.py: exit code 1: FAIL: this is a GPU slot but torch finds no CUDA" in done.stdout
    )


@pytest.mark.slow  # the smoke test's sealed run
@pytest.mark.timeout(1800)  # two cold compiles (trainer, evaluator) of the tiny model
@pytest.mark.skipif(sandbox_problem() is not None, reason=f"{sandbox_problem()}")
def test_smoke_runs_a_compiled_sealed_run_on_the_cpu(target_repo, tiny_cache):
    done = smoke(target_repo, tiny_cache)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.split() for line in done.stdout.splitlines()[1:]]
    assert [words[0] for words in lines] == [
        "sandbox",
        "data",
        "start-up",
        "compile",
        "steps",
        "export",
        "evaluate",
    ]
    assert all(words[2] == "s" and words[3] == "ok" for words in lines), done.stdout
    assert "3 steps in all" in done.stdout and lines[-1][4] == "val_bpb"


@pytest.mark.parametrize(
    "driver, chosen",
    [
        (None, "torch==2.13.0 from PyPI"),  # no nvidia-smi: a CPU machine, as before
        ("590.48.01", "torch==2.13.0 from PyPI"),  # PyPI's CUDA 13 build
        ("575.51.03", "torch==2.13.0 from https://download.pytorch.org/whl/cu128"),
        ("565.57.01", "torch==2.13.0 from https://download.pytorch.org/whl/cu126"),
        ("535.183.01", None),  # too old for any: one line, non-zero
    ],
)
def test_setup_picks_a_torch_build_the_driver_supports(tmp_path, driver, chosen):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if driver is not None:
        (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\necho {driver}\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "setup.sh"), "--which-torch"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if chosen is None:
        assert done.returncode != 0 and done.stdout == ""
        assert done.stderr.strip().startswith("setup: NVIDIA driver 535 is too old")
    else:
        assert (done.returncode, done.stdout.strip()) == (0, chosen), done.stderr


def test_first_gpu_bench_says_in_one_line_that_there_is_no_gpu(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SWARM_FAKE_GPUS"}
    env["PATH"] = "/usr/bin:/bin"  # no nvidia-smi; torch (a CPU build here) finds no GPU either
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "first_gpu.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "first_gpu: no CUDA GPU on this machine (nvidia-smi and torch find none)"
    ]
