"""What the tests know of the research target: the repository root, and running its prepare.py / train.py on
the tiny profile (subprocess environments, a fresh module object of prepare.py, the untrained val_bpb)."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def tiny_env(cache_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a tiny-profile prepare.py / train.py subprocess using the given data cache."""
    return {**os.environ, "AUTORESEARCH_PROFILE": "tiny", "AUTORESEARCH_CACHE_DIR": str(cache_dir), **extra}


def run_prepare(cache_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180):
    """Run the repository's prepare.py for the tiny profile into cache_dir; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "prepare.py"), *args],
        env=env or tiny_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load_prepare(cache_dir: Path, profile: str = "tiny"):
    """A fresh module object of the repository's prepare.py, bound to this profile and cache directory
    (prepare.py reads both from the environment when it is loaded)."""
    import importlib.util
    import uuid

    saved = {k: os.environ.get(k) for k in ("AUTORESEARCH_PROFILE", "AUTORESEARCH_CACHE_DIR")}
    os.environ.update(AUTORESEARCH_PROFILE=profile, AUTORESEARCH_CACHE_DIR=str(cache_dir))
    try:
        spec = importlib.util.spec_from_file_location(f"prepare_{uuid.uuid4().hex}", REPO_ROOT / "prepare.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return module


def uniform_bpb(cache_dir: Path) -> float:
    """val_bpb of a model that gives every token the same probability, from the cache's evaluation files:
    log2(vocab) x the counted target tokens / their bytes. train.py's model starts there (its lm_head starts
    near zero), so this is the untrained value."""
    import math

    import numpy as np

    rows = np.load(Path(cache_dir) / "eval" / "val_tokens.npy")
    token_bytes = np.load(Path(cache_dir) / "eval" / "token_bytes.npy")
    nbytes = token_bytes[rows[:, 1:].astype(np.int64)]
    return math.log2(len(token_bytes)) * int((nbytes > 0).sum()) / int(nbytes.sum())


def evaluate_model(
    model: Path,
    cache_dir: Path,
    seed: int = 0,
    profile: str = "tiny",
    flags: tuple[str, ...] = (),
    **limits: str,
) -> dict:
    """The sealed evaluator's outcome for a model archive, as the runner starts it (`python -I -m
    swarm.runner.evaluator`, the profile's constants from the repository's prepare.py); `limits` adds
    options (e.g. `**{"--max-model-bytes": "1000"}`), `flags` options without a value. The device is CUDA when torch sees one."""
    import hashlib
    import json

    import torch

    from swarm.target.profiles import profile_constants

    constants = profile_constants((REPO_ROOT / "prepare.py").read_text(), profile)
    result = Path(model).with_name(Path(model).name + ".result.json")
    argv = [sys.executable, "-I", "-m", "swarm.runner.evaluator", str(model), "--cache", str(cache_dir)]
    argv += [
        "--manifest-sha256",
        hashlib.sha256((Path(cache_dir) / "prepared.json").read_bytes()).hexdigest(),
    ]
    argv += ["--seq-len", str(constants["max_seq_len"]), "--vocab-size", str(constants["vocab_size"])]
    argv += ["--eval-tokens", str(constants["eval_tokens"]), "--result", str(result), "--seed", str(seed)]
    argv += ["--device", "cuda" if torch.cuda.is_available() else "cpu"]
    for key, value in limits.items():
        argv += [key, value]
    argv += list(flags)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTORESEARCH_", "PYTHON"))}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(result.read_text())
