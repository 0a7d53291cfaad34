"""The prepared data cache as the runner sees it: where it is, its manifest of hashes, and the evaluation files.

prepare.py writes `<cache>/prepared.json` last, with the sha256 of every file it made; the validation shard,
the validation token rows and the token byte lengths live apart from the training data, in `<cache>/eval/`,
so a sandbox can hide them from trainers. The runner pins the manifest's own hash and checks the files it
lists before any result counts: a cache changed since (by a trainer, by a stray prepare.py) stops the runner
instead of turning into poisoned numbers. Reading is done here once, for the runner and the evaluator alike.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from swarm.errors import DataError

MANIFEST = "prepared.json"
LAYOUT = 3  # eval/ kept apart, sha256 hashes in the manifest, secret evaluation rows and a holdout set
EVAL_DIR = "eval"
VAL_TOKENS = f"{EVAL_DIR}/val_tokens.npy"  # (rows, T + 1) token ids: inputs and targets of every row
HOLDOUT_TOKENS = f"{EVAL_DIR}/holdout_tokens.npy"  # (rows, T + 1): the holdout no selection uses
TOKEN_BYTES = f"{EVAL_DIR}/token_bytes.npy"  # UTF-8 byte length of every token id, 0 for special tokens


def cache_dir(profile: str, environ: dict[str, str] | None = None) -> Path:
    """Where prepare.py keeps a profile's data: AUTORESEARCH_CACHE_DIR, else ~/.cache/autoresearch/<profile>
    (the same rule as prepare.py's cache_dir_for, which the runner must not import)."""
    override = (os.environ if environ is None else environ).get("AUTORESEARCH_CACHE_DIR")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "autoresearch" / profile


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    root: Path
    sha256: str  # of prepared.json itself: the value a run pins
    files: dict[str, str]  # path relative to root -> sha256

    def read_checked(self, name: str) -> bytes:
        """The bytes of a listed file, once read and checked against its hash (what is checked is what is used)."""
        expected = self.files.get(name)
        if expected is None:
            raise DataError(f"the data manifest of {self.root} does not list {name}; run prepare.py again")
        try:
            data = (self.root / name).read_bytes()
        except OSError as e:
            raise DataError(f"cannot read {self.root / name}: {e.strerror}") from None
        if sha256_bytes(data) != expected:
            raise DataError(
                f"{self.root / name} does not match its hash in the data manifest: the cache was changed "
                "after prepare.py wrote it; no result is recorded until it is prepared again"
            )
        return data

    def check_all(self) -> None:
        for name in self.files:
            self.read_checked(name)


def load_manifest(root: Path, pinned_sha256: str | None = None) -> Manifest:
    """The manifest of a cache in the sealed layout; with `pinned_sha256`, only if it is that exact manifest."""
    path = Path(root) / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"no prepared data at {root}: run prepare.py for this profile first") from None
    try:
        info = json.loads(raw)
    except ValueError:
        raise DataError(f"{path} is not JSON: run prepare.py again") from None
    if not isinstance(info, dict) or info.get("layout") != LAYOUT or not isinstance(info.get("sha256"), dict):
        raise DataError(
            f"the data cache at {root} predates secret evaluation rows (layout {LAYOUT}): "
            "run prepare.py again to update it"
        )
    digest = sha256_bytes(raw)
    if pinned_sha256 is not None and digest != pinned_sha256:
        raise DataError(
            f"the data manifest at {path} is not the one pinned when the run was spawned "
            f"({digest[:12]} != {pinned_sha256[:12]}): the cache changed; prepare it again and re-spawn"
        )
    return Manifest(root=Path(root), sha256=digest, files={str(k): str(v) for k, v in info["sha256"].items()})
