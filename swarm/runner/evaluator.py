"""The sealed evaluator: val_bpb of a handed-over model, computed by the swarm's code in a process of its own.

    python -I -m swarm.runner.evaluator MODEL --cache DIR --manifest-sha256 HEX --seq-len T --vocab-size V
        --eval-tokens N --result PATH [--holdout-tokens H] [--batch-size B] [--device cpu|cuda] [--mirror]
        [--max-model-bytes B] [--seed S] [--wait]

The runner starts it beside the trainer (`-I`: never the commit's code on its import path); with --wait it
reads and checks its data and device first, then waits for "go", sent once the trainer has ended. It
checks the archive (swarm.runner.artifact), computes the cross-entropy from the logits itself (the model
never sees a target), exactly the upstream metric, and checks causality on a few rows in the same precision
and compiled form as the evaluation. It writes one JSON object to --result: measured, invalid (the model
broke the contract), or data_error / device_error (the machine failed: nothing is recorded). The holdout
measurement goes to --result only, never to the log agents read. Long story: docs/trust.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

from swarm.board.experiments import BAD_MODEL, LOOKS_AHEAD
from swarm.errors import ArtifactRejected, DataError, DeviceFault, ModelRejected
from swarm.runner.artifact import check_archive, check_program, strip_metadata_asserts
from swarm.runner.clock import program_digest
from swarm.target.data import HOLDOUT_TOKENS, TOKEN_BYTES, VAL_TOKENS, load_manifest

# Every torch.load the archive loader makes refuses pickled code; set before torch is imported (it is read
# at each load). Deterministic kernels make an honest model's prefix logits identical when its future changes.
os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
# As train.py: OpenMP threads that spin while waiting slow every other CPU process on the machine tenfold.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The causality check cuts CAUSALITY_ROWS rows, each at one position. Against a next-token peek a cut row
# tests exactly one (row, position) pair: the logits at the cut read the first swapped token. Rows are drawn
# uniformly (the batches are a secret shuffle, the checked batches secret too) and each cut uniformly over
# 0..T-2, independently of the row, its place in the batch and its content; the token after the cut always
# changes. So a model peeking at any set of (row, position) pairs with density f (every 64th position, the
# rows whose tokens have some property, ...) escapes with probability at most (1 - f)^n: for f = 1/64 and a
# miss at most 1e-3, n = ln(1e-3) / ln(1 - 1/64) = 438.6, so 439 rows (rounded up to whole batches: 448 at
# batch 16 or 32). Cost on the h100 profile: 10240 evaluation rows in 320 batches of 32, plus 14 forwards of
# cut batches and their log-softmax comparisons: about 5% more evaluation time (the old check: 2 batches).
CAUSALITY_MISS = 1e-3  # the largest chance that a peek at 1 position in 64 passes one run
CAUSALITY_DENSITY = 1 / 64
CAUSALITY_ROWS = math.ceil(math.log(CAUSALITY_MISS) / math.log1p(-CAUSALITY_DENSITY))
CAUSALITY_TOLERANCE = 1e-3  # nats: the largest change of any log-probability before the cut that passes
CHUNK_ELEMENTS = 1 << 25  # logits (rows x T x vocab) the evaluator handles at once: 128 MB in fp32


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    compiled = args.device == "cuda" or args.mirror
    try:
        rows, token_bytes = read_eval_data(args)
        holdout = read_holdout(args)
        import torch.export  # noqa: F401  (the slow imports, before the wait)
        from torch._export.serde import serialize  # noqa: F401

        check_device(args.device, compiled)
        if args.wait:
            if sys.stdin.readline().strip() != "go":
                return 0  # the runner gave up on this run (its trainer failed): nothing to say
            started = time.monotonic()
        # the memory only now: the trainer on the same GPU has ended (holding it earlier could fail its run)
        check_device(args.device, False, (args.batch_size or 1, args.seq_len, args.vocab_size))
        model = _read_regular_file(Path(args.model), args.max_model_bytes)
        program = load_model(model, args.seq_len, args.batch_size)
        weights = program_digest(program)  # as loaded, before anything moves it: the runner's clock compares
        forward = Forward(program, __import__("torch").device(args.device), compiled=compiled)
        value = evaluate_program(forward, rows, token_bytes, args.device, args.seed)
        result = {"outcome": "measured", "val_bpb": value, "weights_sha256": weights}
        if holdout is not None:  # after val_bpb: a model rejected there is never measured here
            result["holdout_bpb"] = evaluate_program(
                forward, holdout, token_bytes, args.device, args.seed + 1, check=False
            )
    except ModelRejected as e:
        result = {"outcome": "invalid", "reason": str(e)}
    except DeviceFault as e:  # before DataError, its base: the machine failed, not the data
        result = {"outcome": "device_error", "reason": str(e)}
    except DataError as e:
        result = {"outcome": "data_error", "reason": str(e)}
    result["eval_seconds"] = round(time.monotonic() - started, 3)
    Path(args.result).write_text(json.dumps(result))
    shown = {k: v for k, v in result.items() if k != "holdout_bpb"}
    print(f"evaluator: {json.dumps(shown)}", flush=True)
    return 0


def check_device(device: str, compiled: bool, logits_shape: tuple[int, int, int] | None = None) -> None:
    """Before any model: the device the evaluation runs on works (DeviceFault otherwise, never the model's
    fault). CUDA initialises and, given `logits_shape`, holds two fp32 logit tensors of the evaluation's
    shape (the batch's and the cut batch's); with `compiled`, a small function compiles (Inductor: Triton
    on CUDA, a C++ compiler on a CPU) and agrees with its eager self under the evaluation's bf16 autocast."""
    import torch

    where = f"the evaluator's device ({device})"
    try:
        dev = torch.device(device)
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise DeviceFault(f"{where}: torch finds no usable CUDA device (a driver too old or none)")
            torch.cuda.init()
            if logits_shape is not None:
                held = [torch.empty(logits_shape, dtype=torch.float32, device=dev) for _ in range(2)]
                del held
                torch.cuda.empty_cache()
        if compiled:
            _compile_probe(dev)
    except DeviceFault:
        raise
    except Exception as e:
        raise DeviceFault(f"{where} fails its check: {_brief(e)}") from None


def _compile_probe(dev) -> None:
    import torch

    def probe(x, w):
        return torch.log_softmax((x @ w).float() * 0.5, dim=-1)

    generator = torch.Generator().manual_seed(0)
    x, w = (torch.randn(shape, generator=generator).to(dev) for shape in ((8, 64), (64, 64)))
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16):
        want = probe(x, w)
        got = torch.compile(probe, dynamic=False)(x, w)
    if not torch.allclose(got.float(), want.float(), atol=0.05):
        raise DeviceFault(f"the evaluator's device ({dev.type}): a compiled function disagrees with eager")


def _brief(e: BaseException) -> str:
    """One line of an exception: its type and the first line of its message, bounded."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {(lines[0] if lines else '')[:200]}"


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


def evaluate_program(
    program, rows, token_bytes, device: str = "cpu", seed: int = 0, mirror: bool = False, check: bool = True
) -> float:
    """val_bpb of a checked program (or a Forward of it, to measure a second set of rows without compiling
    again) over validation rows (N, T + 1) with token byte lengths (numpy arrays), with the causality check
    unless not `check`; raises ModelRejected (DeviceFault when the machine fails). Compiled under bf16
    autocast on CUDA, or on a CPU with `mirror`; eager fp32 on a CPU otherwise."""
    import numpy as np
    import torch

    device = torch.device(device)
    rows = torch.from_numpy(rows.astype(np.int64)).to(device)
    token_bytes = torch.from_numpy(token_bytes.astype(np.int64)).to(device)
    if isinstance(program, Forward):
        forward = program
    else:
        forward = Forward(program, device, compiled=device.type == "cuda" or mirror)
    return bits_per_byte(forward, rows, token_bytes, torch.Generator().manual_seed(seed), check)


def _load_array(data: bytes):
    import io

    import numpy as np

    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        raise DataError(f"an evaluation file is not a plain array: {e}") from None


def load_model(data: bytes, seq_len: int | None = None, batch: int | None = None):
    """The checked ExportedProgram of a handed-over archive's bytes (read once: what is checked is loaded),
    less its traced-dtype asserts; with `batch`, its input must be (batch, seq_len)."""
    import io

    import torch

    try:
        check_archive(data)
        program = torch.export.load(io.BytesIO(data))
        shape = check_program(program, seq_len=seq_len)
        if batch is not None and shape[0] != batch:
            raise ArtifactRejected(
                f"the program reads batches of {shape[0]} rows, the evaluator's are {batch} "
                "(hand the model over with prepare.export_model)"
            )
        strip_metadata_asserts(program)
    except ArtifactRejected as e:
        raise ModelRejected(f"{BAD_MODEL}: {e}") from None
    except Exception as e:  # torch's loader on a malformed archive: the model's fault, not the runner's
        raise ModelRejected(
            f"{BAD_MODEL}: the archive does not load: {type(e).__name__}: {str(e)[:200]}"
        ) from None
    program.batch_size = shape[0]
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
    """logits = forward(idx) for a full batch of the program's static shape, the same way for check and eval:
    compiled under bf16 autocast (CUDA, or the CPU mirror of it), or eager in fp32."""

    def __init__(self, program, device, compiled: bool):
        import torch

        self.torch = torch
        self.batch = program.batch_size
        self.eager = program.module().to(device)
        self.module = self.eager
        self.autocast = device.type if compiled else None
        if compiled:
            torch.use_deterministic_algorithms(True, warn_only=True)
            self.module = torch.compile(self.eager, dynamic=False)

    def __call__(self, idx):
        torch = self.torch
        try:
            logits = self._run(self.module, idx)
        except Exception as e:
            if self.module is not self.eager and self._runs_eagerly(idx):
                # The compiled forward fails where the eager one works: the machine's fault when the device
                # check now fails too (its compiler broke); else this program's alone, recorded as such, so
                # that a program made to break the compiler cannot stop every runner it is requeued on.
                check_device(str(idx.device), compiled=True)
                raise ModelRejected(
                    f"{BAD_MODEL}: its program fails compiled where it runs eagerly: {_brief(e)}"
                ) from None
            raise ModelRejected(f"{BAD_MODEL}: it fails on a batch: {_brief(e)}") from None
        if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or logits.shape[:2] != idx.shape:
            raise ModelRejected(
                f"{BAD_MODEL}: it must return logits of shape (B, T, vocab), not {_shape(logits)}"
            )
        if not logits.is_floating_point():
            raise ModelRejected(f"{BAD_MODEL}: its logits are not floating point")
        return logits  # in the model's dtype: converted a few rows at a time (row_chunks)

    def _run(self, module, idx):
        torch = self.torch
        autocast = torch.autocast(self.autocast, dtype=torch.bfloat16) if self.autocast else _nothing()
        with torch.inference_mode(), autocast:
            return module(idx)

    def _runs_eagerly(self, idx) -> bool:
        try:
            self._run(self.eager, idx)
        except Exception:
            return False
        return True


def row_chunks(rows: int, per_row: int):
    """Slices of at most CHUNK_ELEMENTS // per_row rows (at least one) covering range(rows)."""
    step = max(1, CHUNK_ELEMENTS // max(per_row, 1))
    return [slice(start, min(start + step, rows)) for start in range(0, rows, step)]


def batches(rows, batch: int, order):
    """(used, inputs, targets) over the rows in `order` (a permutation); a partial last batch is filled
    with rows from the start of the order."""
    torch = __import__("torch")
    for start in range(0, order.numel(), batch):
        picked = order[start : start + batch]
        used = picked.numel()
        if used < batch:
            picked = torch.cat([picked, order[: batch - used]])
        chunk = rows[picked.to(rows.device)]
        yield used, chunk[:, :-1], chunk[:, 1:]


def causality_schedule(n_batches: int, batch: int, generator) -> Counter:
    """How many cut forwards each batch gets: CAUSALITY_ROWS rows in whole batches, the batches drawn at
    random (every batch once before any twice, when there are fewer batches than checks)."""
    import torch

    wanted = -(-CAUSALITY_ROWS // batch)
    picks: list[int] = []
    while len(picks) < wanted:
        picks += torch.randperm(n_batches, generator=generator).tolist()
    return Counter(picks[:wanted])


def bits_per_byte(forward: Forward, rows, token_bytes, generator, check: bool = True) -> float:
    """Summed cross-entropy (nats) of every target token over ln 2 times their UTF-8 bytes, over the rows
    shuffled into batches by `generator`; the batches causality_schedule picks are also checked for
    look-ahead (check_causality), against the logits computed here."""
    import torch
    import torch.nn.functional as F

    vocab_size = token_bytes.numel()
    order = torch.randperm(rows.size(0), generator=generator)
    n_batches = -(-rows.size(0) // forward.batch)
    checks = causality_schedule(n_batches, forward.batch, generator) if check else [0] * n_batches
    total_nats = torch.zeros((), dtype=torch.float64, device=rows.device)
    total_bytes = torch.zeros((), dtype=torch.int64, device=rows.device)
    for k, (used, x, y) in enumerate(batches(rows, forward.batch, order)):
        logits = forward(x)
        if logits.size(-1) < vocab_size:
            raise ModelRejected(
                f"{BAD_MODEL}: {logits.size(-1)} logits per token for a vocabulary of {vocab_size}"
            )
        for _ in range(checks[k]):
            check_causality(forward, x, logits, rows, vocab_size, generator)
        for part in row_chunks(used, logits[0].numel()):
            chunk, targets = logits[part].float(), y[part]
            nats = F.cross_entropy(chunk.reshape(-1, chunk.size(-1)), targets.reshape(-1), reduction="none")
            nbytes = token_bytes[targets].reshape(-1)
            total_nats += (nats.double() * (nbytes > 0)).sum()
            total_bytes += nbytes.sum()
        del logits
    # in Python floats: ln 2 times an int64 tensor is a float32 tensor, which rounds the byte count
    value = total_nats.item() / (math.log(2) * int(total_bytes.item()))
    if not math.isfinite(value):
        raise ModelRejected(f"{BAD_MODEL}: val_bpb is {value} (logits that are not finite)")
    return value


def check_causality(forward: Forward, x, logits, rows, vocab_size: int, generator) -> None:
    """Logits at position t may depend on tokens <= t only: each row of the batch `x` (whose `logits` the
    evaluation just computed) is cut at a position drawn uniformly over 0..T-2, and its tokens after the cut
    are replaced by those of another validation row picked at random (the first of them always differs);
    the log-probabilities up to the cut must not move by more than CAUSALITY_TOLERANCE."""
    import torch

    B, T = x.shape
    cuts = torch.randint(T - 1, (B,), generator=generator).to(x.device)
    other = torch.randint(rows.size(0), (B,), generator=generator).to(x.device)
    shift = torch.randint(1, vocab_size, (B,), generator=generator).to(x.device)
    after = torch.arange(T, device=x.device)[None, :] > cuts[:, None]
    swapped = torch.where(after, rows[other, :-1], x)
    # a peek at the cut reads the first swapped token: it must differ, or the peek compares a token with itself
    every, first = torch.arange(B, device=x.device), cuts + 1
    same = swapped[every, first] == x[every, first]
    swapped[every, first] = torch.where(same, (x[every, first] + shift) % vocab_size, swapped[every, first])
    changed = forward(swapped)
    worst, worst_row = 0.0, 0
    for part in row_chunks(B, logits[0].numel()):
        a, b = logits[part].float(), changed[part].float()
        # a log-probability moves by at most twice the largest logit change: only a row whose logits moved
        # more before its cut needs the log-softmax (an honest model's prefix logits do not move at all)
        change = (a - b).abs().amax(-1).masked_fill(after[part], 0.0).amax(-1) * 2
        if bool((change > CAUSALITY_TOLERANCE).any()):
            moved = torch.log_softmax(a, -1) - torch.log_softmax(b, -1)
            change = moved.abs().amax(-1).masked_fill(after[part], 0.0).amax(-1)
        if not bool(torch.isfinite(change).all()):
            raise ModelRejected(f"{BAD_MODEL}: its logits are not finite")
        value, row = change.max(0)
        if value.item() > worst:
            worst, worst_row = value.item(), part.start + int(row)
    if worst > CAUSALITY_TOLERANCE:
        raise ModelRejected(
            f"{LOOKS_AHEAD}: its log-probabilities up to position {int(cuts[worst_row])} changed by "
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
    parser.add_argument(
        "--mirror", action="store_true", help="on a CPU, evaluate as on CUDA: compiled, under bf16 autocast"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="rows per forward the program must take (the profile's)"
    )
    parser.add_argument("--max-model-bytes", type=int, default=4 << 30)
    parser.add_argument(
        "--seed", type=int, default=0, help="shuffles the batches, picks the causality check's rows and cuts"
    )
    parser.add_argument("--wait", action="store_true", help='get ready, then wait for "go" on stdin')
    return parser


if __name__ == "__main__":
    sys.exit(main())
