"""The package's shape: layers that hold, a wheel that carries every module, handlers that resolve."""

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from swarm.cli import build_parser
from tests.support.target import REPO_ROOT

VENV_BIN = Path(sys.executable).parent


def test_lower_layers_never_import_higher_ones():
    """The import-linter contracts in pyproject.toml: swarm/'s layers, and test fixtures kept out of it."""
    proc = subprocess.run(
        [str(VENV_BIN / "lint-imports")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def _handlers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if handler := sub.get_default("handler"):
                    yield (*path, name), handler
                yield from _handlers(sub, (*path, name))


def test_every_command_handler_resolves_and_is_named_after_its_command():
    handlers = dict(_handlers(build_parser()))
    assert len(handlers) >= 25  # every command and `agent` kind
    for command, handler in handlers.items():
        module_name, function_name = handler.split(":")
        assert function_name == f"cmd_{command[-1]}", (command, handler)
        assert callable(getattr(importlib.import_module(module_name), function_name)), handler


@pytest.mark.slow  # builds and installs a wheel
def test_the_wheel_holds_every_module_and_its_swarm_runs(tmp_path):
    """A wheel built from the source (not an editable install) has every module of swarm/, and the
    `swarm` it installs answers --help (which imports nothing beyond the standard library)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "swarm", source / "swarm", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            wheels,
            source,
        ],  # fmt: skip
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("*.whl")
    inside = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".py")}
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "swarm").rglob("*.py")}
    assert modules - inside == set()
    assert {"swarm/tui/app.py", "swarm/board/state.py", "swarm/agents/api/agent.py"} <= inside

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    subprocess.run(
        [venv / "bin/python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [venv / "bin/swarm", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "spawn" in proc.stdout and "watch" in proc.stdout

    # With the dependencies in reach (this environment's site-packages, after the venv's own), every
    # module imports from the installed wheel, not from the source tree.
    (site,) = (venv / "lib").glob("python*/site-packages")
    (site / "deps.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    check = (
        "import importlib, pkgutil, swarm; "
        "assert '/site-packages/swarm' in swarm.__file__, swarm.__file__; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(swarm.__path__, 'swarm.') "
        "if m.name != 'swarm.__main__']"
    )
    proc = subprocess.run(
        [venv / "bin/python", "-P", "-c", check],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
