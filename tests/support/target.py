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


def uniform_bpb(prep, batch_size: int = 16) -> float:
    """val_bpb of a model that gives every token the same probability, measured by prep.evaluate_bpb.
    train.py's model starts there (its lm_head starts near zero), so this is the untrained value."""
    import torch
    import torch.nn.functional as F

    class UniformLogits(torch.nn.Module):
        def __init__(self, vocab_size: int):
            super().__init__()
            self.vocab_size = vocab_size

        def forward(self, x, y, reduction="mean"):
            logits = torch.zeros(y.numel(), self.vocab_size)
            return F.cross_entropy(logits, y.reshape(-1), reduction=reduction)

    tok = prep.Tokenizer.from_directory()
    return prep.evaluate_bpb(UniformLogits(tok.get_vocab_size()), tok, batch_size)
