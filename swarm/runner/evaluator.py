"""The sealed evaluator: val_bpb of a handed-over model, computed by the swarm's code in a process of its own.

    python -I -m swarm.runner.evaluator MODEL --cache DIR --manifest-sha256 HEX --seq-len T --vocab-size V
        --eval-tokens N --result PATH [--holdout-tokens H] [--device cpu|cuda] [--max-model-bytes B]
        [--seed S] [--wait]

The runner starts this with the trainer (never the commit's code: `-I` keeps the run directory and PYTHON*
variables off the import path). It reads the validation rows and the token byte lengths, checked against
the data manifest the run pinned, and imports torch and its loader; with --wait it then waits for "go" on
stdin (sent when the trainer has ended; end of input without it: exit). It reads the model archive once,
checks it (artifact.py) and loads it; then
- spot-checks causality on CAUSALITY_BATCHES evaluation batches picked at random: rows whose tokens after
  a random cut are swapped for another row's must give the same log-probabilities up to the cut (a model
  that reads its targets, or any later token, fails), in the same precision and compiled form as the
  evaluation itself (a program could otherwise look ahead only under bf16);
- computes the summed next-token cross-entropy from the logits itself (the model never sees a target) over
  the profile's validation rows and divides by ln 2 times the UTF-8 bytes of the target tokens (special
  tokens count in neither sum), exactly the upstream metric;
- with --holdout-tokens, the same measurement (a second call, the same compiled program) on the holdout
  rows: `holdout_bpb`, which the runner keeps where no agent reads it (swarm.board.holdout). It goes to
  --result only, never to the log (agents read their runs' logs).

It writes one JSON object to --result: {"outcome": "measured", "val_bpb": ..., "eval_seconds": ...},
{"outcome": "invalid", "reason": ...} for a model that breaks the contract, or {"outcome": "data_error",
"reason": ...} when the cache does not match its manifest (the runner then stops: nothing is recorded).
On CUDA it evaluates under bf16 autocast with the program compiled; on a CPU in fp32, eagerly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from swarm.board.experiments import BAD_MODEL, LOOKS_AHEAD
from swarm.errors import ArtifactRejected, DataError, ModelRejected
from swarm.runner.artifact import check_archive, check_program
from swarm.target.data import HOLDOUT_TOKENS, TOKEN_BYTES, VAL_TOKENS, load_manifest

# Every torch.load the archive loader makes refuses pickled code; set before torch is imported (it is read
# at each load). Deterministic kernels make an honest model's prefix logits identical when its future changes.
os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
# As train.py: OpenMP threads that spin while waiting slow every other CPU process on the machine tenfold.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

CAUSALITY_BATCHES = 2  # forward passes of cut rows (each row cut at its own position, spread over T)
CAUSALITY_TOLERANCE = 1e-3  # nats: the largest change of any log-probability before the cut that passes


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    try:
        rows, token_bytes = read_eval_data(args)
        holdout = read_holdout(args)
        import torch.export  # noqa: F401  (the slow imports, before the wait)
        from torch._export.serde import serialize  # noqa: F401

        if args.wait:
            if sys.stdin.readline().strip() != "go":
                return 0  # the runner gave up on this run (its trainer failed): nothing to say
            started = time.monotonic()
        model = _read_regular_file(Path(args.model), args.max_model_bytes)
        program = load_model(model, args.seq_len)
        forward = Forward(program, __import__("torch").device(args.device))
        result = {
            "outcome": "measured",
            "val_bpb": evaluate_program(forward, rows, token_bytes, args.device, args.seed),
        }
        if holdout is not None:  # after val_bpb: a model rejected there is never measured here
            result["holdout_bpb"] = evaluate_program(
                forward, holdout, token_bytes, args.device, args.seed + 1
            )
    except ModelRejected as e:
        result = {"outcome": "invalid", "reason": str(e)}
    except DataError as e:
        result = {"outcome": "data_error", "reason": str(e)}
    result["eval_seconds"] = round(time.monotonic() - started, 3)
    Path(args.result).write_text(json.dumps(result))
    shown = {k: v for k, v in result.items() if k != "holdout_bpb"}
    print(f"evaluator: {json.dumps(shown)}", flush=True)
    return 0


def read_eval_data(args):
    """The first eval_tokens // seq_len validation rows and the token byte lengths, as numpy arrays, from
    bytes checked against the pinned manifest (DataError otherwise)."""
    manifest = load_manifest(Path(args.cache), args.manifest_sha256)
    rows, token_bytes = (_load_array(manifest.read_checked(name)) for name in (VAL_TOKENS, TOKEN_BYTES))
    needed = args.eval_tokens // args.seq_len
    if rows.ndim != 2 or rows.shape[1] != args.seq_len + 1 or rows.shape[0] < needed:
        raise DataError(f"{VAL_TOKENS} holds {rows.shape} rows, not {needed} of {args.seq_len + 1} tokens")
    if token_bytes.shape != (args.vocab_size,):
        raise DataError(f"{TOKEN_BYTES} has shape {token_bytes.shape}, not ({args.vocab_size},)")
    return rows[:needed], token_bytes


def read_holdout(args):
    """The first holdout_tokens // seq_len holdout rows (numpy), or None without --holdout-tokens."""
    if not args.holdout_tokens:
        return None
    manifest = load_manifest(Path(args.cache), args.manifest_sha256)
    rows = _load_array(manifest.read_checked(HOLDOUT_TOKENS))
    needed = args.holdout_tokens // args.seq_len
    if rows.ndim != 2 or rows.shape[1] != args.seq_len + 1 or rows.shape[0] < needed:
        raise DataError(
            f"{HOLDOUT_TOKENS} holds {rows.shape} rows, not {needed} of {args.seq_len + 1} tokens"
        )
    return rows[:needed]


def evaluate_program(program, rows, token_bytes, device: str = "cpu", seed: int = 0) -> float:
    """val_bpb of a checked program (or a Forward of it, to measure a second set of rows without compiling
    again) over validation rows (N, T + 1) with token byte lengths (numpy arrays), after the causality
    check; raises ModelRejected."""
    import numpy as np
    import torch

    device = torch.device(device)
    rows = torch.from_numpy(rows.astype(np.int64)).to(device)
    token_bytes = torch.from_numpy(token_bytes.astype(np.int64)).to(device)
    forward = program if isinstance(program, Forward) else Forward(program, device)
    return bits_per_byte(forward, rows, token_bytes, torch.Generator().manual_seed(seed))


def _load_array(data: bytes):
    import io

    import numpy as np

    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        raise DataError(f"an evaluation file is not a plain array: {e}") from None


def load_model(data: bytes, seq_len: int | None = None):
    """The checked ExportedProgram of a handed-over archive's bytes (read once: what is checked is loaded)."""
    import io

    import torch

    try:
        check_archive(data)
        program = torch.export.load(io.BytesIO(data))
        batch, _ = check_program(program, seq_len=seq_len)
    except ArtifactRejected as e:
        raise ModelRejected(f"{BAD_MODEL}: {e}") from None
    except Exception as e:  # torch's loader on a malformed archive: the model's fault, not the runner's
        raise ModelRejected(
            f"{BAD_MODEL}: the archive does not load: {type(e).__name__}: {str(e)[:200]}"
        ) from None
    program.batch_size = batch
    return program


def _read_regular_file(path: Path, max_bytes: int) -> bytes:
    """A plain file's bytes, at most max_bytes (not a link to a device, a fifo or another run's files)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ModelRejected(f"{BAD_MODEL}: train.py handed over no model ({path.name} is missing)") from None
    except OSError as e:
        raise ModelRejected(f"{BAD_MODEL}: cannot open {path.name}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ModelRejected(f"{BAD_MODEL}: {path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise ModelRejected(
                f"{BAD_MODEL}: {path.name} has {info.st_size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit"
            )
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ModelRejected(f"{BAD_MODEL}: {path.name} is over the {max_bytes / 1e6:.0f} MB limit")
    return data


class Forward:
    """logits = forward(idx) for a full batch of the program's static shape, the same way for check and eval."""

    def __init__(self, program, device):
        import torch

        self.torch = torch
        self.batch = program.batch_size
        module = program.module().to(device)
        self.on_cuda = device.type == "cuda"
        if self.on_cuda:
            torch.use_deterministic_algorithms(True, warn_only=True)
            module = torch.compile(module, dynamic=False)
        self.module = module

    def __call__(self, idx):
        torch = self.torch
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.on_cuda else _nothing()
        with torch.inference_mode(), autocast:
            try:
                logits = self.module(idx)
            except Exception as e:
                raise ModelRejected(
                    f"{BAD_MODEL}: it fails on a batch: {type(e).__name__}: {str(e)[:200]}"
                ) from None
        if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or logits.shape[:2] != idx.shape:
            raise ModelRejected(
                f"{BAD_MODEL}: it must return logits of shape (B, T, vocab), not {_shape(logits)}"
            )
        if not logits.is_floating_point():
            raise ModelRejected(f"{BAD_MODEL}: its logits are not floating point")
        return logits.float()


def batches(rows, batch: int):
    """(used, inputs, targets) over all rows; a partial last batch is filled with rows from the start."""
    torch = __import__("torch")
    for start in range(0, rows.size(0), batch):
        chunk = rows[start : start + batch]
        used = chunk.size(0)
        if used < batch:
            chunk = torch.cat([chunk, rows[: batch - used]])
        yield used, chunk[:, :-1], chunk[:, 1:]


def bits_per_byte(forward: Forward, rows, token_bytes, generator) -> float:
    """Summed cross-entropy (nats) of every target token over ln 2 times their UTF-8 bytes; CAUSALITY_BATCHES
    batches picked at random are also checked for look-ahead (check_causality), on the logits computed here."""
    import torch
    import torch.nn.functional as F

    vocab_size = token_bytes.numel()
    n_batches = -(-rows.size(0) // forward.batch)
    checked = set(torch.randperm(n_batches, generator=generator)[:CAUSALITY_BATCHES].tolist())
    total_nats = torch.zeros((), dtype=torch.float64, device=rows.device)
    total_bytes = torch.zeros((), dtype=torch.int64, device=rows.device)
    for k, (used, x, y) in enumerate(batches(rows, forward.batch)):
        logits = forward(x)
        if logits.size(-1) < vocab_size:
            raise ModelRejected(
                f"{BAD_MODEL}: {logits.size(-1)} logits per token for a vocabulary of {vocab_size}"
            )
        if k in checked:
            check_causality(forward, x, logits, rows, generator)
        logits, y = logits[:used], y[:used]
        nats = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
        nbytes = token_bytes[y].reshape(-1)
        total_nats += (nats.double() * (nbytes > 0)).sum()
        total_bytes += nbytes.sum()
    # in Python floats: ln 2 times an int64 tensor is a float32 tensor, which rounds the byte count
    value = total_nats.item() / (math.log(2) * int(total_bytes.item()))
    if not math.isfinite(value):
        raise ModelRejected(f"{BAD_MODEL}: val_bpb is {value} (logits that are not finite)")
    return value


def check_causality(forward: Forward, x, logits, rows, generator) -> None:
    """Logits at position t may depend on tokens <= t only: each row of the batch `x` (whose `logits` the
    evaluation just computed) is cut at its own position, stratified so the cuts cover the whole sequence,
    and its tokens after the cut are replaced by those of another validation row picked at random; the
    log-probabilities up to the cut must not move by more than CAUSALITY_TOLERANCE."""
    import torch

    B, T = x.shape
    cuts = ((torch.arange(B) + torch.rand(B, generator=generator)) * (T - 1) / B).long().to(x.device)
    other = torch.randint(rows.size(0), (B,), generator=generator).to(x.device)
    after = torch.arange(T, device=x.device)[None, :] > cuts[:, None]
    swapped = torch.where(after, rows[other, :-1], x)
    change = (torch.log_softmax(logits, -1) - torch.log_softmax(forward(swapped), -1)).abs().amax(-1)
    change = change.masked_fill(after, 0.0)
    worst = change.amax().item()
    if not math.isfinite(worst):
        raise ModelRejected(f"{BAD_MODEL}: its logits are not finite")
    if worst > CAUSALITY_TOLERANCE:
        row = int(change.amax(dim=-1).argmax())
        raise ModelRejected(
            f"{LOOKS_AHEAD}: its log-probabilities up to position {int(cuts[row])} changed by "
            f"{worst:.3g} when only later tokens changed"
        )


def _shape(value) -> str:
    return str(tuple(value.shape)) if hasattr(value, "shape") else type(value).__name__


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m swarm.runner.evaluator", description=__doc__.splitlines()[0]
    )
    parser.add_argument("model", help="the handed-over model archive (model.pt2)")
    parser.add_argument("--cache", required=True, help="the profile's data cache (its eval/ files are read)")
    parser.add_argument("--manifest-sha256", required=True, help="the data manifest's hash pinned by the run")
    parser.add_argument("--seq-len", type=int, required=True)
    parser.add_argument("--vocab-size", type=int, required=True)
    parser.add_argument("--eval-tokens", type=int, required=True)
    parser.add_argument("--result", required=True, help="where to write the JSON outcome")
    parser.add_argument("--holdout-tokens", type=int, default=0, help="also measure this many holdout tokens")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--max-model-bytes", type=int, default=4 << 30)
    parser.add_argument("--seed", type=int, default=0, help="picks the causality check's rows and cuts")
    parser.add_argument("--wait", action="store_true", help='get ready, then wait for "go" on stdin')
    return parser


if __name__ == "__main__":
    sys.exit(main())
