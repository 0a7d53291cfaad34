"""The GPU path around a sealed run, without a GPU: a trainer's sandbox holds only its slot's device node
(fake nodes in a directory standing in for /dev), /dev/nvidia-uvm is made when missing, the evaluator gets
the library paths the trainer gets, compile caches persist per agent and cannot be poisoned, the operator's
cache variables never reach a sandbox unmounted, and train.py on a GPU slot without CUDA fails at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from swarm.agents.protocol import agent_context, submit
from swarm.runner.caches import CompileCaches
from swarm.runner.devices import CONTROL_NODES, ensure_uvm, gpu_mounts, slot_gpu
from swarm.runner.sandbox import evaluator_sandbox, reduced_environment, sandbox_problem, trainer_sandbox
from swarm.runner.sealed import RunPlan, evaluator_environment, trainer_environment
from swarm.runner.service import Runner, RunnerSettings
from tests.support.swarm_run import STAND_IN_SETTINGS, commit_train
from tests.support.target import REPO_ROOT, tiny_env

needs_bwrap = pytest.mark.skipif(sandbox_problem() is not None, reason=f"{sandbox_problem()}")


def fake_machine(root: Path, gpus: int = 4) -> tuple[Path, Path]:
    """A stand-in /dev with `gpus` GPU nodes and the control nodes, and a stand-in /proc/driver/nvidia/gpus
    whose PCI order puts the GPU of minor 3 first (minors need not follow CUDA's PCI order)."""
    dev, proc = root / "dev", root / "gpus"
    dev.mkdir(parents=True)
    for k in range(gpus):
        (dev / f"nvidia{k}").write_text(f"gpu node {k}")
    for name in CONTROL_NODES:
        if name == "nvidia-caps":
            (dev / name).mkdir()
            (dev / name / "nvidia-cap1").write_text("cap")
        else:
            (dev / name).write_text(name)
    minors = [3, 0, 1, 2]
    for k in range(gpus):
        entry = proc / f"0000:{0x10 + k:02x}:00.0"
        entry.mkdir(parents=True)
        (entry / "information").write_text(
            f"Model: \t\t Test GPU\nGPU UUID: \t GPU-{k}aaaaaaa-0000-0000-0000-000000000000\n"
            f"Bus Type: \t PCIe\nDevice Minor: \t {minors[k]}\n"
        )
    return dev, proc


def test_a_slot_gets_its_own_gpu_node_and_the_control_nodes_only(tmp_path):
    dev, proc = fake_machine(tmp_path)
    mounts = gpu_mounts("1", dev, proc)  # slot 1: second in PCI order, /dev/nvidia0
    assert {m.path for m in mounts} == {"/dev/nvidia0", *(f"/dev/{n}" for n in CONTROL_NODES)}
    assert all(m.kind == "dev" and m.source == str(dev / Path(m.path).name) for m in mounts)
    assert slot_gpu("1", proc).uuid == "GPU-1aaaaaaa-0000-0000-0000-000000000000"
    assert slot_gpu("1", proc).visible == slot_gpu("1", proc).uuid  # the one GPU, whatever CUDA numbers it
    assert gpu_mounts(None, dev, proc) == []  # a CPU slot: no GPU node at all
    # without the driver's listing: minor = index, CUDA_VISIBLE_DEVICES the index
    assert {m.path for m in gpu_mounts("2", dev, tmp_path / "none")} >= {"/dev/nvidia2"}
    assert slot_gpu("2", tmp_path / "none").visible == "2"


@needs_bwrap
def test_inside_the_trainer_sandbox_only_the_slots_nodes_exist(tmp_path):
    dev, proc = fake_machine(tmp_path / "machine")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    sandbox = trainer_sandbox(run_dir, None, devices=gpu_mounts("0", dev, proc))
    done = subprocess.run(
        sandbox.wrap(["/bin/sh", "-c", "ls /dev /dev/nvidia-caps; cat /dev/nvidia3"]),
        env=reduced_environment({"PATH": "/usr/bin:/bin"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = done.stdout.split()
    assert "nvidia3" in seen and "nvidiactl" in seen and "nvidia-uvm" in seen and "nvidia-cap1" in seen
    assert not {"nvidia0", "nvidia1", "nvidia2"} & set(seen)
    assert done.stdout.rstrip().endswith("gpu node 3")


def test_the_runner_makes_nvidia_uvm_when_missing(tmp_path, monkeypatch):
    dev, _ = fake_machine(tmp_path)
    (dev / "nvidia-uvm").unlink()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    modprobe = bin_dir / "nvidia-modprobe"
    modprobe.write_text(f'#!/bin/sh\n[ "$1 $2" = "-u -c=0" ] && touch {dev}/nvidia-uvm\n')
    modprobe.chmod(0o755)
    assert "not installed" in ensure_uvm(dev, modprobe="no-such-nvidia-modprobe")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert ensure_uvm(dev) is None and (dev / "nvidia-uvm").exists()
    assert ensure_uvm(tmp_path / "empty") is None  # no GPU: nothing to make


def test_a_failing_nvidia_modprobe_is_one_line(tmp_path, monkeypatch):
    dev, _ = fake_machine(tmp_path)
    (dev / "nvidia-uvm").unlink()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-modprobe").write_text("#!/bin/sh\necho 'cannot load module' >&2\nexit 1\n")
    (bin_dir / "nvidia-modprobe").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert ensure_uvm(dev).endswith("did not make it: cannot load module")


def plan_for(tmp_path: Path, slot: str = "cpu0", **fields) -> RunPlan:
    settings = fields.pop("settings", RunnerSettings())
    environ = {
        "PATH": "/usr/bin:/bin",
        "AUTORESEARCH_CACHE_DIR": str(tmp_path / "data"),
        **fields.pop("environ", {}),
    }
    constants = {"max_seq_len": 64, "vocab_size": 256, "time_budget": 2, "eval_tokens": 4096}
    return RunPlan("tiny", constants, slot, settings, 60.0, None, environ, **fields)


def test_the_operators_cache_variables_never_reach_a_sandbox(tmp_path):
    operator = {
        "TORCHINDUCTOR_CACHE_DIR": "/home/op/.inductor",
        "TRITON_CACHE_DIR": "/home/op/.triton",
        "TRITON_OVERRIDE_DIR": "/home/op/kernels",
        "TORCH_EXTENSIONS_DIR": "/home/op/ext",
        "AUTORESEARCH_CUDA_MIRROR": "1",  # only the runner's setting turns the mirror on
        "AUTORESEARCH_SMOKE_STEPS": "2",
    }
    settings = RunnerSettings(trainer_env=("AUTORESEARCH_CUDA_MIRROR", "AUTORESEARCH_SMOKE_STEPS"))
    cold = trainer_environment(plan_for(tmp_path, environ=operator, settings=settings))
    assert not {k for k in cold if "CACHE" in k or k.startswith(("TRITON_", "TORCH_"))} - {
        "AUTORESEARCH_CACHE_DIR"
    }
    assert "AUTORESEARCH_CUDA_MIRROR" not in cold and "AUTORESEARCH_SMOKE_STEPS" not in cold
    assert cold["AUTORESEARCH_DEVICE"] == "cpu" and cold["CUDA_VISIBLE_DEVICES"] == ""
    cache = tmp_path / "agent-cache"
    cache.mkdir()
    warm = trainer_environment(plan_for(tmp_path, environ=operator, compile_cache=cache, smoke_steps=3))
    assert warm["TORCHINDUCTOR_CACHE_DIR"] == str(cache / "inductor")
    assert warm["TRITON_CACHE_DIR"] == str(cache / "triton") and warm["AUTORESEARCH_SMOKE_STEPS"] == "3"
    mirror = trainer_environment(plan_for(tmp_path, settings=RunnerSettings(cuda_mirror=True)))
    assert mirror["AUTORESEARCH_CUDA_MIRROR"] == "1"
    gpu = trainer_environment(plan_for(tmp_path, slot="3", settings=RunnerSettings(cuda_mirror=True)))
    assert "AUTORESEARCH_CUDA_MIRROR" not in gpu and gpu["AUTORESEARCH_DEVICE"] == "cuda"


def test_the_evaluator_gets_the_trainers_library_paths_bound_read_only(tmp_path):
    libs, triton = tmp_path / "cuda" / "lib64", tmp_path / "libcuda"
    libs.mkdir(parents=True)
    triton.mkdir()
    (libs / "libcudart.so").write_text("lib\n")
    environ = {"LD_LIBRARY_PATH": f"{libs}:/nonexistent", "TRITON_LIBCUDA_PATH": str(triton)}
    plan = plan_for(tmp_path, slot="cpu0", environ=environ)
    env = evaluator_environment(plan, tmp_path / "work")
    assert env["LD_LIBRARY_PATH"] == environ["LD_LIBRARY_PATH"]
    assert env["TRITON_LIBCUDA_PATH"] == str(triton)
    assert trainer_environment(plan)["LD_LIBRARY_PATH"] == env["LD_LIBRARY_PATH"]
    if sandbox_problem() is not None:
        pytest.skip(sandbox_problem())
    from swarm.runner.devices import library_path_targets

    run_dir, cache = tmp_path / "run", tmp_path / "data"
    run_dir.mkdir()
    cache.mkdir()
    sandbox = evaluator_sandbox(run_dir, cache, tmp_path / "result", readable=library_path_targets(environ))
    script = f"cat {libs}/libcudart.so; ls -d {triton}; touch {libs}/planted || echo read-only"
    done = subprocess.run(
        sandbox.wrap(["/bin/sh", "-c", script]), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["lib", str(triton), "read-only"], done.stderr
    assert not (libs / "planted").exists()


def test_a_private_copy_of_the_trusted_cache_writes_nothing_back(tmp_path):
    caches = CompileCaches(tmp_path / "compile-cache")
    trusted = caches.trusted()
    (trusted / "inductor").mkdir()
    (trusted / "inductor" / "kernel").write_text("base")
    copy = caches.for_run(False, tmp_path / "run")
    assert (
        copy == tmp_path / "run" / ".compile-cache" and (copy / "inductor" / "kernel").read_text() == "base"
    )
    (copy / "inductor" / "kernel").write_text("poisoned")  # in place: a copy, not a link
    (copy / "inductor" / "planted").write_text("weights")
    assert (trusted / "inductor" / "kernel").read_text() == "base"
    assert sorted(p.name for p in (trusted / "inductor").iterdir()) == ["kernel"]
    assert caches.for_run(True, tmp_path / "run2") == trusted
    assert caches.evaluator() not in (trusted, copy)


# A stand-in train.py that looks at its compile cache: what is there from earlier runs, then plants a
# kernel of its agent's (what a poisoning train.py would do), and checks the evaluator's cache is absent.
CACHE_PROBE = textwrap.dedent(
    """\
    import os, sys
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR", "")
    print("cache:", cache)
    os.makedirs(cache, exist_ok=True)
    print("found:", sorted(os.listdir(cache)))
    open(os.path.join(cache, "kernel-of-" + sys.argv[0].split("/")[-1] + "-{agent}"), "w").write("slow")
    print("operator-cache:", os.path.exists("{operator}"))
    print("evaluator-cache:", os.path.exists("{evaluator}"))
    print("---")
    print("val_bpb:          0.900000")
    print("training_seconds: 0.0")
    print("profile:          tiny")
    """
)


@needs_bwrap
def test_no_train_py_but_the_bases_writes_a_cache_another_run_reads(make_swarm_run, tmp_path, monkeypatch):
    """The base's own train.py (an agent's baseline) warms the persistent cache; a changed train.py gets a
    private copy of it: what it plants (a poisoned kernel, weights to train on before its window) reaches no
    later run, its own included; no trainer sees the operator's or the evaluator's cache."""
    operator = tmp_path / "operator-inductor"
    operator.mkdir()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(operator))  # the operator's own: never mounted
    evaluator = tmp_path / "unknown-yet"
    base = CACHE_PROBE.format(agent="base", operator=operator, evaluator=evaluator)
    run = make_swarm_run(agents=("cpu0", "cpu1"), train=base)
    evaluator = run.board.directory / "compile-cache" / "evaluator"
    seen = []
    for agent, source in (
        ("cpu0", None),  # the baseline: the base's train.py
        ("cpu0", "cpu0"),
        ("cpu0", "cpu0"),
        ("cpu1", "cpu1"),
    ):
        worktree = run.worktree(agent)
        if source is not None:
            probe = CACHE_PROBE.format(agent=source, operator=operator, evaluator=evaluator)
            commit_train(worktree, probe + f"# run {len(seen)}\n", "probe")
        runner = Runner(run.repo, run.board, agent, RunnerSettings(**STAND_IN_SETTINGS), log=lambda _: None)
        with run.agent_env(agent):
            job = submit(agent_context(), "probe")
        while (record := runner.step())["id"] != job["id"]:  # a confirmation rerun queued before it
            pass
        log = (run.board.directory / record["log"]).read_text()
        assert record.get("val_bpb") == 0.9, (record.get("reason"), log)  # measured (kept or not)
        lines = dict(
            line.split(": ", 1)
            for line in log.splitlines()
            if line.split(":")[0] in ("cache", "found", "operator-cache", "evaluator-cache")
        )
        seen.append(lines)
    base_run, first, second, other = seen
    trusted = run.board.directory / "compile-cache" / "base"
    assert base_run["cache"].startswith(str(trusted)) and base_run["found"] == "[]"
    for lines in (first, second, other):  # warm from the base's cache, never from another changed run
        assert ".compile-cache" in lines["cache"] and not lines["cache"].startswith(str(trusted))
        assert lines["found"] == "['kernel-of-train.py-base']", lines
    assert sorted(p.name for p in (trusted / "inductor").iterdir()) == ["kernel-of-train.py-base"]
    for lines in seen:
        assert lines["operator-cache"] == "False" and lines["evaluator-cache"] == "False"
    assert list(operator.iterdir()) == []


def test_train_py_on_a_gpu_slot_without_cuda_fails_at_once(tiny_cache, tmp_path):
    env = tiny_env(tiny_cache, AUTORESEARCH_DEVICE="cuda", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout.strip().splitlines()[-1].startswith("FAIL: this is a GPU slot but torch finds no CUDA")
    assert "step" not in done.stdout  # it trained nothing
