"""Fixed research setup for autoresearch: constants, data, tokenizer, dataloader and the model hand-over.

train.py imports everything it needs from here. Agents never edit this file: it defines what an experiment
is measured against, so the runner always takes it from the run's base commit.

train.py ends by handing its trained model over with `export_model` (a torch.export program of
`forward(idx) -> logits` in the run directory); the runner's evaluator computes val_bpb from it, on the
validation rows and token byte lengths prepared here into <cache>/eval/ and listed with their sha256 hashes
in the cache's manifest. Trainers never read <cache>/eval/: it is the evaluator's.

Which rows are evaluated is a secret drawn at prepare time (os.urandom) and thrown away once the rows are
written: it shuffles the validation documents before they are packed (every source), generates the built-in
corpus's validation text (`--source local`) and picks the validation documents of a `--text-dir`. So no
train.py can rebuild the evaluation rows from this file's code, its seeds or the training shards. Beside
them, on documents of their own, a holdout set (eval/holdout_tokens.npy) that no selection ever uses: the
runner records its bits per byte where agents cannot read it, to show the human whether gains hold.

Usage:
    python prepare.py                          # download climbmix shards from Hugging Face, train the tokenizer
    python prepare.py --source local           # offline: shards from a built-in corpus (or --text-dir DIR)
    AUTORESEARCH_PROFILE=tiny python prepare.py --source local   # the CPU profile: seconds, not minutes

The profile (AUTORESEARCH_PROFILE, set by the runner, default h100) picks the fixed constants below. Data
and tokenizer live in ~/.cache/autoresearch/<profile>, or in AUTORESEARCH_CACHE_DIR when that is set.
"""

from __future__ import annotations

import argparse
import array
import base64
import bisect
import functools
import hashlib
import io
import json
import os
import re
import secrets
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import requests
import rustbpe
import tiktoken
import torch
from filelock import FileLock

# ---------------------------------------------------------------------------
# Profiles and fixed constants
# ---------------------------------------------------------------------------

# Plain literals only: tools read this dict with ast.literal_eval, without importing torch.
PROFILES = {
    # The upstream autoresearch constants: one H100, five minutes.
    "h100": {
        "max_seq_len": 2048,  # context length
        "vocab_size": 8192,  # tokenizer vocabulary, special tokens included
        "time_budget": 300,  # seconds of training (startup and evaluation excluded)
        "eval_tokens": 20971520,  # 40 * 524288 validation tokens
        "eval_batch_size": 32,  # rows per forward of the sealed evaluator (export_model exports for it)
        "holdout_tokens": 1310720,  # eval_tokens / 16 held-out tokens: under +10% evaluation time
        "hf_train_shards": 10,  # training shards `--source hf` downloads by default
        "tokenizer_chars": 1000000000,  # training text the tokenizer sees at most
        "local_train_shards": 8,  # shards `--source local` builds (plus the validation shard)
        "local_shard_chars": 12000000,  # characters per local shard
        "local_doc_chars": 6000,  # longest local document (short contexts want short documents)
    },
    # Seconds on a CPU: a whole train.py run (startup, training, evaluation) in about 25 s on 2 cores.
    "tiny": {
        "max_seq_len": 256,
        "vocab_size": 2048,
        "time_budget": 15,
        "eval_tokens": 65536,
        "eval_batch_size": 16,
        "holdout_tokens": 32768,
        "hf_train_shards": 1,
        "tokenizer_chars": 3000000,
        "local_train_shards": 2,
        "local_shard_chars": 1500000,
        "local_doc_chars": 1000,
    },
}

PROFILE = os.environ.get("AUTORESEARCH_PROFILE") or "h100"
if PROFILE not in PROFILES:
    raise SystemExit(
        f"prepare.py: unknown AUTORESEARCH_PROFILE={PROFILE!r} (known profiles: {', '.join(PROFILES)})"
    )
_SETTINGS = PROFILES[PROFILE]


def _budget_x() -> float:
    """A transfer check's multiple of the budget: set by the runner (AUTORESEARCH_BUDGET_X) for a run it
    trains longer on purpose, and enforced by its clock; 1 otherwise."""
    text = os.environ.get("AUTORESEARCH_BUDGET_X") or "1"
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 1.0 <= value <= 20.0:
        raise SystemExit(f"prepare.py: AUTORESEARCH_BUDGET_X={text!r} is not a number from 1 to 20")
    return value


MAX_SEQ_LEN = _SETTINGS["max_seq_len"]
VOCAB_SIZE = _SETTINGS["vocab_size"]
BUDGET_X = _budget_x()
TIME_BUDGET = _SETTINGS["time_budget"] * BUDGET_X if BUDGET_X != 1.0 else _SETTINGS["time_budget"]
EVAL_TOKENS = _SETTINGS["eval_tokens"]
EVAL_BATCH_SIZE = _SETTINGS["eval_batch_size"]
HOLDOUT_TOKENS = _SETTINGS["holdout_tokens"]

BASE_URL = "https://huggingface.co/datasets/karpathy/climbmix-400b-shuffle/resolve/main"
MAX_SHARD = 6542  # the last climbmix shard is shard_06542.parquet
VAL_SHARD = MAX_SHARD  # pinned: validation always reads this shard (kept in eval/), training never does

# Pre-tokenizer split (GPT-4 style, but digits grouped by at most two).
SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
BOS_TOKEN = "<|bos|>"
SPECIAL_TOKENS = [BOS_TOKEN, "<|reserved_1|>", "<|reserved_2|>", "<|reserved_3|>"]


def cache_dir_for(profile: str) -> Path:
    """Where a profile's data and tokenizer live: AUTORESEARCH_CACHE_DIR, else ~/.cache/autoresearch/<profile>."""
    override = os.environ.get("AUTORESEARCH_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "autoresearch" / profile


CACHE_DIR = cache_dir_for(PROFILE)
DATA_DIR = CACHE_DIR / "data"  # training shards
TOKENIZER_DIR = CACHE_DIR / "tokenizer"
EVAL_DIR = CACHE_DIR / "eval"  # the evaluator's alone: validation shard, validation rows, token byte lengths
MANIFEST = "prepared.json"  # written last, with the sha256 of every file: its presence means complete
LAYOUT = 3  # cache layout: eval/ apart from the training data, hashes in the manifest, secret rows + holdout
EVAL_FILES = ("val_tokens.npy", "holdout_tokens.npy", "token_bytes.npy")  # what the evaluator reads
MODEL_FILE = "model.pt2"  # what train.py hands over, in its working directory (the run directory)


def shard_name(index: int) -> str:
    return f"shard_{index:05d}.parquet"


def shard_path(index: int) -> Path:
    """Training shards live in data/, the validation shard in eval/."""
    return (EVAL_DIR if index == VAL_SHARD else DATA_DIR) / shard_name(index)


def list_parquet_files(data_dir: Path = DATA_DIR) -> list[Path]:
    """Complete shards only (in-flight downloads end in .tmp and are never listed); data/ holds training shards."""
    if not data_dir.is_dir():
        return []
    return sorted(p for p in data_dir.iterdir() if p.name.endswith(".parquet"))


def _shard_texts(path):
    """The documents of a shard (a path, or a file the runner's clock handed out), a row group (a list of
    strings) at a time."""
    if not isinstance(path, Path):
        path.seek(0)  # read again in every epoch
    pf = pq.ParquetFile(path)
    for rg in range(pf.num_row_groups):
        yield pf.read_row_group(rg, columns=["text"]).column("text").to_pylist()


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a torn write (temp file, then rename)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_shard(path: Path, docs: list[str]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    pq.write_table(pa.table({"text": docs}), tmp, row_group_size=1024)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Data source "hf": climbmix parquet shards over HTTP
# ---------------------------------------------------------------------------


def download_shard(index: int, base_url: str, data_dir: Path, attempts: int, retry_wait: float) -> bool:
    """Fetch one shard with retries and exponential backoff. The bytes go to a .tmp file that becomes the
    shard only once it is complete and parses as parquet, so an interrupted transfer leaves nothing behind."""
    final = data_dir / shard_name(index)
    if final.exists():
        return True
    url = f"{base_url.rstrip('/')}/{final.name}"
    tmp = final.with_name(f"{final.name}.{os.getpid()}.tmp")
    for attempt in range(1, attempts + 1):
        try:
            with requests.get(url, stream=True, timeout=(10, 60)) as response:
                response.raise_for_status()
                expected = response.headers.get("Content-Length")
                received = 0
                with open(tmp, "wb") as f:
                    for chunk in response.iter_content(chunk_size=1 << 20):
                        f.write(chunk)
                        received += len(chunk)
            if expected is not None and received != int(expected):
                raise OSError(f"short read: {received} of {expected} bytes")
            pq.ParquetFile(tmp)  # raises unless the footer is intact
            os.replace(tmp, final)
            print(f"  downloaded {final.name}")
            return True
        except (requests.RequestException, OSError, pa.ArrowException) as e:
            tmp.unlink(missing_ok=True)
            print(f"  attempt {attempt}/{attempts} for {final.name} failed: {e}")
            if attempt < attempts:
                time.sleep(retry_wait * 2 ** (attempt - 1))
    return False


def download_data(
    num_train_shards: int, base_url: str, workers: int, attempts: int, retry_wait: float
) -> list[int]:
    """Download training shards 0..N-1 and the pinned validation shard in parallel; returns the failed indices."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    EVAL_DIR.mkdir(parents=True, exist_ok=True)
    indices = list(range(min(num_train_shards, MAX_SHARD)))
    indices.append(VAL_SHARD)
    missing = [i for i in indices if not shard_path(i).exists()]
    print(f"Data: {len(indices) - len(missing)} of {len(indices)} shards present, downloading {len(missing)}")
    if not missing:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(missing)))) as pool:
        ok = list(
            pool.map(
                lambda i: download_shard(i, base_url, shard_path(i).parent, attempts, retry_wait), missing
            )
        )
    return [i for i, good in zip(missing, ok, strict=True) if not good]


# ---------------------------------------------------------------------------
# Data source "local": the same shard layout, built offline
# ---------------------------------------------------------------------------

TEXT_SUFFIXES = (".txt", ".md", ".rst")


def split_into_documents(text: str, max_chars: int) -> list[str]:
    """Cut a long text into documents at blank lines, each at most about max_chars long."""
    docs, current, size = [], [], 0
    for para in re.split(r"\n\s*\n", text.strip()):
        if current and size + len(para) > max_chars:
            docs.append("\n\n".join(current))
            current, size = [], 0
        current.append(para)
        size += len(para) + 2
    if current:
        docs.append("\n\n".join(current))
    return [d for d in docs if d.strip()]


def _python_reference_docs() -> list[str]:
    """Prose that ships with every CPython: the language reference topics behind help()."""
    from pydoc_data.topics import topics

    return [
        doc
        for name in sorted(topics)
        for doc in split_into_documents(topics[name], _SETTINGS["local_doc_chars"])
    ]


class WordChain:
    """A word-bigram chain over a reference text: cheap, seeded, endless English-like text with real
    structure for a small model to learn. Many chains advance at once as numpy arrays."""

    def __init__(self, text: str):
        words = text.split()
        self.vocab, ids = np.unique(np.array(words, dtype=object), return_inverse=True)
        ids = ids.astype(np.int64)
        # Successors of each word, grouped by word; the text wraps around so every word has one.
        nxt = np.roll(ids, -1)
        order = np.argsort(ids, kind="stable")
        self.successors = nxt[order]
        self.counts = np.bincount(ids, minlength=len(self.vocab))
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.starts = ids  # a chain starts at a word drawn with its corpus frequency

    def documents(self, rng: np.random.Generator, n_docs: int, min_words: int, max_words: int) -> list[str]:
        lengths = rng.integers(min_words, max_words + 1, size=n_docs)
        walk = np.empty((n_docs, max_words), dtype=np.int64)
        walk[:, 0] = self.starts[rng.integers(0, len(self.starts), size=n_docs)]
        for t in range(1, max_words):
            cur = walk[:, t - 1]
            pick = (rng.random(n_docs) * self.counts[cur]).astype(np.int64)
            walk[:, t] = self.successors[self.offsets[cur] + pick]
        docs = []
        for row, length in zip(walk, lengths, strict=True):
            words = self.vocab[row[:length]].tolist()
            # Paragraphs of 40..120 words, so that documents hold newlines as well as spaces.
            cuts = np.cumsum(rng.integers(40, 121, size=length // 40 + 1))
            paras = [" ".join(words[a:b]) for a, b in zip(np.concatenate([[0], cuts]), cuts, strict=False)]
            docs.append("\n\n".join(p for p in paras if p))
        return docs


def builtin_corpus_shard(reference: list[str], chain: WordChain, shard_seed: int, n_chars: int) -> list[str]:
    """One shard of the built-in corpus: its share of the reference docs plus generated docs up to n_chars,
    shuffled. Same seed, same documents, on any machine with the same Python and numpy."""
    rng = np.random.default_rng([20240901, shard_seed])
    docs = list(reference)
    size = sum(len(d) for d in docs)
    max_words = max(10, _SETTINGS["local_doc_chars"] // 6)  # about six characters per word and space
    while size < n_chars:
        batch = chain.documents(rng, 256, max_words // 20 + 5, max_words)
        for doc in batch:
            if size >= n_chars:
                break
            docs.append(doc)
            size += len(doc)
    order = rng.permutation(len(docs))
    return [docs[i] for i in order]


def _read_text_dir(text_dir: Path) -> list[str]:
    files = sorted(p for p in text_dir.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    doc_chars = _SETTINGS["local_doc_chars"]
    docs = [
        d
        for p in files
        for d in split_into_documents(p.read_text(encoding="utf-8", errors="replace"), doc_chars)
    ]
    if len(docs) < 2:
        raise SystemExit(
            f"prepare.py: {text_dir} holds {len(docs)} document(s) in {', '.join(TEXT_SUFFIXES)} files; need at least 2"
        )
    return docs


def secret_split(docs: list[str], secret: int) -> tuple[list[str], list[str]]:
    """(training, validation) documents of a --text-dir: a tenth (at least one) to validation, which tenth
    drawn with the secret; the training documents keep their order."""
    n_val = max(1, len(docs) // 10)
    chosen = set(np.random.default_rng([secret, 1]).choice(len(docs), size=n_val, replace=False).tolist())
    return [d for i, d in enumerate(docs) if i not in chosen], [d for i, d in enumerate(docs) if i in chosen]


def build_local_data(text_dir: Path | None, secret: int) -> None:
    """Write training shards 0..N-1 and the validation shard from --text-dir or the built-in corpus.

    --text-dir: a tenth of the documents, drawn with the secret, go to validation; the rest is dealt
    round-robin to the training shards. The built-in corpus: every reference document (public text ships
    with Python, so none can be a secret) goes to training; the validation shard is generated text only,
    from the secret seed. Shards are built all together or not at all (a split is only disjoint with
    itself)."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    EVAL_DIR.mkdir(parents=True, exist_ok=True)
    n_train = _SETTINGS["local_train_shards"]
    docs = _read_text_dir(text_dir) if text_dir else _python_reference_docs()
    train_docs, val_docs = secret_split(docs, secret) if text_dir else (docs, [])
    n_train = max(1, min(n_train, len(train_docs)))
    plan = {VAL_SHARD: val_docs} | {s: train_docs[s::n_train] for s in range(n_train)}
    present = [s for s in sorted(plan) if shard_path(s).exists()]
    print(f"Data: {len(present)} of {len(plan)} local shards present, building {len(plan) - len(present)}")
    if len(present) == len(plan):
        return
    for s in present:  # an interrupted build: its split is not this one's
        shard_path(s).unlink()
    chain = None if text_dir else WordChain("\n".join(docs))
    for s in sorted(plan):
        shard_docs = plan[s]
        if chain is not None:  # the built-in corpus tops each shard up with generated text
            seed = secret if s == VAL_SHARD else s
            shard_docs = builtin_corpus_shard(shard_docs, chain, seed, _SETTINGS["local_shard_chars"])
        _write_shard(shard_path(s), shard_docs)
        print(
            f"  built {shard_name(s)}: {len(shard_docs)} documents, {sum(map(len, shard_docs)) / 1e6:.1f}M chars"
        )


# ---------------------------------------------------------------------------
# Tokenizer: rustbpe-trained BPE, used through tiktoken
# ---------------------------------------------------------------------------


def _training_texts(max_chars: int, doc_cap: int = 10000):
    """Training shards only (the validation shard is in eval/), each document capped, until max_chars."""
    seen = 0
    for path in list_parquet_files():
        for texts in _shard_texts(path):
            for text in texts:
                text = text[:doc_cap]
                yield text
                seen += len(text)
                if seen >= max_chars:
                    return


def train_tokenizer() -> None:
    """Train BPE on the training shards and store its merges (tiktoken's text format)."""
    if (TOKENIZER_DIR / "tokenizer.json").exists():
        print(f"Tokenizer: present at {TOKENIZER_DIR}")
        return
    TOKENIZER_DIR.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    bpe = rustbpe.Tokenizer()
    bpe.train_from_iterator(
        _training_texts(_SETTINGS["tokenizer_chars"]), VOCAB_SIZE - len(SPECIAL_TOKENS), pattern=SPLIT_PATTERN
    )
    ranks = {bytes(token): rank for token, rank in bpe.get_mergeable_ranks()}
    if sorted(ranks.values()) != list(range(VOCAB_SIZE - len(SPECIAL_TOKENS))):
        raise SystemExit(
            f"prepare.py: the training text yields {len(ranks)} distinct tokens, fewer than the "
            f"{VOCAB_SIZE - len(SPECIAL_TOKENS)} the {PROFILE} profile needs; give it more text"
        )
    lines = [
        f"{base64.b64encode(token).decode()} {rank}"
        for token, rank in sorted(ranks.items(), key=lambda t: t[1])
    ]
    meta = {"pattern": bpe.get_pattern(), "special_tokens": SPECIAL_TOKENS, "vocab_size": VOCAB_SIZE}
    _write_atomically(TOKENIZER_DIR / "merges.tiktoken", ("\n".join(lines) + "\n").encode())
    _write_atomically(TOKENIZER_DIR / "tokenizer.json", json.dumps(meta, indent=1).encode())

    tokenizer = Tokenizer.from_directory(TOKENIZER_DIR)
    sample = "Hello world! Numbers: 12345. Unicode: naïve café, 你好 🙂\n\tindented"
    assert tokenizer.decode(tokenizer.encode(sample)) == sample, "tokenizer round trip failed"
    print(
        f"Tokenizer: trained {tokenizer.get_vocab_size()} tokens in {time.time() - t0:.1f}s at {TOKENIZER_DIR}"
    )


class Tokenizer:
    """The BPE tokenizer train.py uses: ordinary text to token ids and back, plus the BOS token."""

    def __init__(self, encoding):
        self.enc = encoding
        self.bos_token_id = encoding.encode_single_token(BOS_TOKEN)

    @classmethod
    def from_directory(cls, tokenizer_dir: Path | str = TOKENIZER_DIR) -> Tokenizer:
        tokenizer_dir = Path(tokenizer_dir)
        if not (tokenizer_dir / "tokenizer.json").exists():
            raise SystemExit(f"prepare.py: no tokenizer in {tokenizer_dir}; run `python prepare.py` first")
        meta = json.loads((tokenizer_dir / "tokenizer.json").read_text())
        if meta["vocab_size"] != VOCAB_SIZE:
            raise SystemExit(
                f"prepare.py: the tokenizer in {tokenizer_dir} has {meta['vocab_size']} tokens but the {PROFILE} "
                f"profile needs {VOCAB_SIZE}: point AUTORESEARCH_CACHE_DIR at a {PROFILE} cache"
            )
        ranks = {}
        for line in (tokenizer_dir / "merges.tiktoken").read_text().splitlines():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
        specials = {name: len(ranks) + i for i, name in enumerate(meta["special_tokens"])}
        encoding = tiktoken.Encoding(
            "autoresearch", pat_str=meta["pattern"], mergeable_ranks=ranks, special_tokens=specials
        )
        return cls(encoding)

    def get_vocab_size(self) -> int:
        return self.enc.n_vocab

    def get_bos_token_id(self) -> int:
        return self.bos_token_id

    def encode(self, text: str | list[str], prepend: int | None = None, num_threads: int = 8):
        """Token ids of one text (a list) or of many (a list of lists); special-token text stays ordinary."""
        if isinstance(text, str):
            ids = self.enc.encode_ordinary(text)
            return [prepend, *ids] if prepend is not None else ids
        rows = self.enc.encode_ordinary_batch(text, num_threads=num_threads)
        return [[prepend, *ids] for ids in rows] if prepend is not None else rows

    def decode(self, ids: list[int]) -> str:
        return self.enc.decode(ids)


def token_byte_lengths(tokenizer: Tokenizer) -> np.ndarray:
    """UTF-8 byte length of every token id; 0 marks special tokens (they count in no byte total)."""
    ordinary = tokenizer.get_vocab_size() - len(SPECIAL_TOKENS)  # special tokens take the last ids
    lengths = [len(tokenizer.enc.decode_single_token_bytes(i)) for i in range(ordinary)]
    return np.array(lengths + [0] * len(SPECIAL_TOKENS), dtype=np.int32)


# ---------------------------------------------------------------------------
# Dataloader: BOS-aligned rows, documents packed by best fit
# ---------------------------------------------------------------------------


def _document_batches(split: str, docs_per_batch: int = 128):
    """Endless (documents, epoch) batches: the training shards in order, or the validation shard."""
    if split == "train":
        paths = training_shards()
    else:
        val_path = shard_path(VAL_SHARD)
        paths = [val_path] if val_path.exists() else []
    if not paths:
        where = DATA_DIR if split == "train" else EVAL_DIR
        raise SystemExit(f"prepare.py: no {split} shards in {where}; run `python prepare.py` first")
    epoch = 1
    while True:
        for path in paths:
            for texts in _shard_texts(path):
                for i in range(0, len(texts), docs_per_batch):
                    yield texts[i : i + docs_per_batch], epoch
        epoch += 1


def make_dataloader(tokenizer: Tokenizer, B: int, T: int, split: str, device=None, buffer_size: int = 1000):
    """Yield (inputs, targets, epoch) batches of shape (B, T) on `device` (default CPU), endlessly.

    Every row starts with a BOS token and is filled completely, without padding: from a buffer of
    tokenized documents it takes the longest one that still fits, and when none fits it crops the
    shortest to fill the row. The validation split always yields the same rows in the same order."""
    assert split in ("train", "val"), split
    device = torch.device(device or "cpu")
    pin = device.type != "cpu"  # page-locked host memory lets the copy to an accelerator run asynchronously
    for rows, epoch in packed_rows(tokenizer, _document_batches(split), B, T, buffer_size):
        pair = torch.from_numpy(np.stack([rows[:, :-1], rows[:, 1:]]))
        if pin:
            pair = pair.pin_memory()
        pair = pair.to(device, non_blocking=pin)
        yield pair[0], pair[1], epoch


def packed_rows(tokenizer: Tokenizer, batches, B: int, T: int, buffer_size: int = 1000):
    """Endless (rows, epoch): (B, T + 1) int64 arrays of BOS-aligned documents from `batches` (an endless
    iterator of (texts, epoch)), packed by best fit as make_dataloader describes."""
    bos = tokenizer.get_bos_token_id()
    lengths: list[int] = []  # sorted; docs[i] has lengths[i] tokens
    docs: list[np.ndarray] = []
    epoch = 1
    capacity = T + 1  # inputs and targets are the row shifted by one

    def refill() -> None:
        nonlocal epoch
        texts, epoch = next(batches)
        for ids in tokenizer.encode(texts, prepend=bos):
            at = bisect.bisect_right(lengths, len(ids))
            lengths.insert(at, len(ids))
            docs.insert(at, np.asarray(ids, dtype=np.int64))

    while True:
        rows = np.empty((B, capacity), dtype=np.int64)
        for r in range(B):
            pos = 0
            while pos < capacity:
                while len(docs) < buffer_size:
                    refill()
                room = capacity - pos
                fit = bisect.bisect_right(lengths, room) - 1  # the longest document that fits
                take = fit if fit >= 0 else 0  # none fits: crop the shortest
                lengths.pop(take)
                doc = docs.pop(take)[:room]
                rows[r, pos : pos + len(doc)] = doc
                pos += len(doc)
        yield rows, epoch


# ---------------------------------------------------------------------------
# The runner's clock (swarm.runner.clock): training time is what lies between the data and the commit
# ---------------------------------------------------------------------------

# Under the runner, the training shards are hidden from train.py and handed out on request over a socket
# the runner time-stamps: the training window opens when the data is asked for and closes when the model's
# weights are committed (hand_over). Time before and after is free but cannot train: there is no data before,
# and weights changed after their commit are rejected by the evaluator. Run by hand, there is no clock.
CLOCK_FD_ENV = "AUTORESEARCH_CLOCK_FD"
WINDOW_OPENED_AT: float | None = None  # time.time() when the training data arrived (the window opened)


@functools.cache
def _clock() -> socket.socket | None:
    fd = os.environ.get(CLOCK_FD_ENV)
    return socket.socket(fileno=int(fd)) if fd else None


def training_shards() -> list:
    """The training shards: under the runner, files it hands out (opening the training window), else the
    paths in DATA_DIR. Cached, so the window opens once."""
    return list(_training_shards())


@functools.cache
def _training_shards() -> tuple:
    global WINDOW_OPENED_AT
    clock = _clock()
    if clock is None:
        WINDOW_OPENED_AT = time.time()
        return tuple(list_parquet_files())
    clock.send(b"start")
    shards = []
    while True:
        names, fds = _receive(clock)
        if not names:
            break
        shards += [(name, os.fdopen(fd, "rb")) for name, fd in zip(names, fds, strict=True)]
    WINDOW_OPENED_AT = time.time()
    return tuple(f for _, f in sorted(shards, key=lambda shard: shard[0]))


def _receive(clock: socket.socket) -> tuple[list[str], list[int]]:
    fds = array.array("i")
    message, ancillary, _, _ = clock.recvmsg(1 << 16, socket.CMSG_SPACE(256 * fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if not message:
        raise SystemExit("prepare.py: the runner's clock closed before handing out the training data")
    return json.loads(message), list(fds)


def training_elapsed() -> float:
    """Seconds since the training window opened (the first training batch was asked for), 0 before."""
    return 0.0 if WINDOW_OPENED_AT is None else time.time() - WINDOW_OPENED_AT


def weights_digest(program: torch.export.ExportedProgram) -> str:
    """sha256 of every tensor of an exported program (parameters, buffers, constants): names, dtypes,
    shapes and bytes. The runner's evaluator computes the same of what it loads (swarm.runner.clock)."""
    digest = hashlib.sha256()
    tensors = {f"state:{k}": v for k, v in program.state_dict.items()}
    tensors.update({f"constant:{k}": v for k, v in program.constants.items() if isinstance(v, torch.Tensor)})
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Evaluation: what the runner's evaluator reads, and what train.py hands it
# ---------------------------------------------------------------------------


def _save_array(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    _write_atomically(path, buffer.getvalue())


def _cycled(docs: list[str], docs_per_batch: int = 16):
    """Endless (documents, epoch) batches over one list of documents."""
    for epoch in range(1, sys.maxsize):
        for i in range(0, len(docs), docs_per_batch):
            yield docs[i : i + docs_per_batch], epoch


def secret_rows(
    tokenizer: Tokenizer, docs: list[str], secret: int, n_eval: int, n_holdout: int, T: int
) -> tuple[np.ndarray, np.ndarray]:
    """(evaluation rows, holdout rows) of T + 1 tokens from the validation documents: shuffled with the
    secret, split into two disjoint sets of documents in proportion to the rows each needs, each packed
    like the training rows (and cycled when it is short of text)."""
    order = np.random.default_rng([secret, 2]).permutation(len(docs))
    shuffled = [docs[i] for i in order]
    if len(shuffled) < 2:
        raise SystemExit("prepare.py: the validation text holds fewer than 2 documents; give it more text")
    cut = min(len(shuffled) - 1, max(1, round(len(shuffled) * n_holdout / (n_eval + n_holdout))))
    sets = []
    for part, n_rows in ((shuffled[cut:], n_eval), (shuffled[:cut], n_holdout)):
        # a buffer of a quarter of the set, refilled 16 documents at a time: the set is used up before it
        # repeats (a buffer holding the whole set would take its short documents again at once)
        buffer = max(1, min(1000, len(part) // 4))
        rows, _ = next(packed_rows(tokenizer, _cycled(part), n_rows, T, buffer))
        sets.append(rows)
    return sets[0], sets[1]


def write_eval_files(secret: int) -> None:
    """The evaluator's inputs, in eval/: EVAL_TOKENS // MAX_SEQ_LEN evaluation rows and HOLDOUT_TOKENS //
    MAX_SEQ_LEN holdout rows (BOS-aligned, MAX_SEQ_LEN + 1 tokens: inputs and targets) chosen with the
    secret (secret_rows), and the byte length of every token. The evaluator reads these and nothing of this
    file, so the metric does not depend on code an agent's run can reach."""
    if all((EVAL_DIR / name).exists() for name in EVAL_FILES):
        return
    tokenizer = Tokenizer.from_directory()
    docs = [d for texts in _shard_texts(shard_path(VAL_SHARD)) for d in texts]
    n_eval, n_holdout = EVAL_TOKENS // MAX_SEQ_LEN, HOLDOUT_TOKENS // MAX_SEQ_LEN
    rows, holdout = secret_rows(tokenizer, docs, secret, n_eval, n_holdout, MAX_SEQ_LEN)
    dtype = np.uint16 if VOCAB_SIZE <= 1 << 16 else np.int32
    _save_array(EVAL_DIR / "val_tokens.npy", rows.astype(dtype))
    _save_array(EVAL_DIR / "holdout_tokens.npy", holdout.astype(dtype))
    _save_array(EVAL_DIR / "token_bytes.npy", token_byte_lengths(tokenizer))
    print(
        f"Eval: {n_eval} evaluation and {n_holdout} holdout rows of {MAX_SEQ_LEN + 1} tokens (secret choice) "
        f"and token byte lengths in {EVAL_DIR}"
    )


def export_model(
    model: torch.nn.Module, batch_size: int | None = None, path: str | Path = MODEL_FILE
) -> None:
    """Hand the trained model over for evaluation: a torch.export program of `model(idx) -> logits` for
    (EVAL_BATCH_SIZE, MAX_SEQ_LEN) token ids, saved to `path` (the run directory's model.pt2). The batch
    size is the evaluator's, fixed here and not by train.py (so a model cannot pick the batches its
    causality check sees); `batch_size` is ignored and kept so that every train.py's call still works.

    The runner's evaluator loads it without any of train.py's Python, so the program must be plain aten
    operators with parameters and buffers as tensors, stateless, with a static input shape, and causal: the
    logits at position t may depend on tokens 0..t only. FlexAttention exports but does not serialise
    (torch 2.13): switch the model to SDPA masks first."""
    hand_over(trace_model(model, batch_size), path)


def trace_model(model: torch.nn.Module, batch_size: int) -> torch.export.ExportedProgram:
    """The torch.export program export_model hands over. Its tensors are the model's own (not copies), so a
    program traced before training holds the trained weights after it: tracing costs no training time."""
    device = next(model.parameters()).device
    idx = torch.zeros((EVAL_BATCH_SIZE, MAX_SEQ_LEN), dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        program = torch.export.export(model, (idx,))
    model.train(was_training)
    return program


def hand_over(program: torch.export.ExportedProgram, path: str | Path = MODEL_FILE) -> None:
    """End training: commit the digest of the program's tensors to the runner's clock (closing the training
    window), then save the program to `path`. Nothing may change the weights after this."""
    clock = _clock()
    if clock is not None:
        clock.send(f"commit {weights_digest(program)}".encode())
    torch.export.save(program, str(path))


# ---------------------------------------------------------------------------
# Device facts
# ---------------------------------------------------------------------------

# Dense bf16 tensor-core peak, by a substring of torch.cuda.get_device_name(); the first match wins.
PEAK_BF16_FLOPS = [
    ("GH200", 989e12),
    ("H200 NVL", 835e12),
    ("H200", 989e12),
    ("H100 NVL", 835e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H800", 989e12),
    ("B200", 2250e12),
    ("B100", 1750e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("A10G", 70e12),
    ("A10", 125e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
]


def peak_bf16_flops(device_name: str) -> float | None:
    """The peak bf16 FLOP/s of a GPU by name, or None when unknown (then MFU is reported as 0)."""
    for key, flops in PEAK_BF16_FLOPS:
        if key in device_name:
            return flops
    return None


# ---------------------------------------------------------------------------
# Cache status and the command line
# ---------------------------------------------------------------------------


def cache_status(profile: str) -> str:
    """One line on a profile's data cache: prepared or not, from where, how big."""
    root = cache_dir_for(profile)
    manifest = root / MANIFEST
    if not manifest.exists():
        return f"not prepared at {root} (AUTORESEARCH_PROFILE={profile} python prepare.py --source local|hf)"
    info = json.loads(manifest.read_text())
    if info.get("profile") != profile:
        return f"at {root} holds the {info.get('profile')!r} profile, not {profile!r}"
    if info.get("layout") != LAYOUT:
        return f"at {root} predates sealed evaluation: run AUTORESEARCH_PROFILE={profile} python prepare.py again"
    files = [root / f for f in info.get("files", [])]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        return f"incomplete at {root}: missing {', '.join(missing[:3])}; run prepare.py again"
    size = sum(f.stat().st_size for f in files) / 1e6
    return f"ready at {root}: source {info['source']}, {info['train_shards']} train shards + val, vocab {info['vocab_size']}, {size:.0f} MB"


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _update_layout(info: dict) -> None:
    """A cache of an older layout. Before sealed evaluation: move the validation shard into eval/ and drop
    the old tokenizer/token_bytes.pt. Before secret rows: drop the evaluation rows (and, for the local
    source, whose split and validation text were public, every shard and the tokenizer). What is missing is
    then written as for a new cache."""
    layout = info.get("layout")
    if layout == LAYOUT:
        return
    EVAL_DIR.mkdir(parents=True, exist_ok=True)
    old_val = DATA_DIR / shard_name(VAL_SHARD)
    if old_val.exists():
        os.replace(old_val, shard_path(VAL_SHARD))
        print(f"Cache: moved the validation data of {CACHE_DIR} into eval/ (sealed evaluation)")
    (TOKENIZER_DIR / "token_bytes.pt").unlink(missing_ok=True)
    stale = [EVAL_DIR / name for name in EVAL_FILES]
    if info.get("source") == "local":
        stale += [*list_parquet_files(), shard_path(VAL_SHARD), *TOKENIZER_DIR.glob("*")]
    for path in stale:
        path.unlink(missing_ok=True)
    print(f"Cache: {CACHE_DIR} gets secret evaluation rows and a holdout set (layout {LAYOUT})")


def prepare(
    source: str,
    text_dir: Path | None,
    num_shards: int,
    base_url: str,
    workers: int,
    attempts: int,
    retry_wait: float,
) -> int:
    """Make the cache complete for the active profile; a complete cache is left untouched."""
    requested = {
        "profile": PROFILE,
        "source": source,
        "text_dir": str(text_dir.resolve()) if text_dir else None,
    }
    manifest = CACHE_DIR / MANIFEST
    if manifest.exists():
        info = json.loads(manifest.read_text())
        recorded = {k: info.get(k) for k in requested}
        if recorded != requested:
            raise SystemExit(
                f"prepare.py: {CACHE_DIR} already holds data prepared as {recorded}; "
                f"use another AUTORESEARCH_CACHE_DIR or delete it"
            )
        _update_layout(info)
        if (
            info.get("layout") == LAYOUT
            and all((CACHE_DIR / f).exists() for f in info["files"])
            and (source != "hf" or info["train_shards"] >= num_shards)
        ):
            print(f"Cache: already prepared at {CACHE_DIR} ({cache_status(PROFILE).split(': ', 1)[-1]})")
            return 0

    print(f"Cache: {CACHE_DIR} (profile {PROFILE}, source {source})")
    # Drawn here, used for this preparation only and never stored: nothing can read it back.
    secret = secrets.randbits(128)
    if source == "hf":
        failed = download_data(num_shards, base_url, workers, attempts, retry_wait)
        if failed:
            names = ", ".join(shard_name(i) for i in failed)
            print(f"prepare.py: could not download {names}; run again to retry", file=sys.stderr)
            return 1
    else:
        build_local_data(text_dir, secret)
    train_tokenizer()
    write_eval_files(secret)

    shards = [p.relative_to(CACHE_DIR).as_posix() for p in list_parquet_files()]
    tokenizer_files = [f"tokenizer/{n}" for n in ("merges.tiktoken", "tokenizer.json")]
    eval_files = [f"eval/{n}" for n in (shard_name(VAL_SHARD), *EVAL_FILES)]
    files = shards + tokenizer_files + eval_files
    info = requested | {
        "vocab_size": VOCAB_SIZE,
        "train_shards": len(shards),
        "layout": LAYOUT,
        "files": files,
        # The runner checks these (and pins this file's own hash) before it records any result.
        "sha256": {f: _sha256(CACHE_DIR / f) for f in files},
    }
    _write_atomically(manifest, json.dumps(info, indent=1).encode())
    print("Done: ready to train.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Prepare data and tokenizer for autoresearch (profile from AUTORESEARCH_PROFILE)."
    )
    parser.add_argument(
        "--source",
        choices=("hf", "local"),
        default="hf",
        help="hf: download climbmix shards; local: build offline",
    )
    parser.add_argument(
        "--text-dir",
        type=Path,
        help=f"local source: build from the {'/'.join(TEXT_SUFFIXES)} files under DIR",
    )
    parser.add_argument(
        "--num-shards",
        type=int,
        default=_SETTINGS["hf_train_shards"],
        help="hf source: training shards (-1 = all)",
    )
    parser.add_argument("--download-workers", type=int, default=8, help="hf source: parallel downloads")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("AUTORESEARCH_BASE_URL", BASE_URL),
        help="hf source: where shards are (env AUTORESEARCH_BASE_URL)",
    )
    parser.add_argument("--retries", type=int, default=5, help="hf source: attempts per shard")
    parser.add_argument(
        "--retry-wait",
        type=float,
        default=2.0,
        help="hf source: seconds before the first retry, doubling after",
    )
    args = parser.parse_args(argv)
    if args.text_dir and args.source != "local":
        parser.error("--text-dir goes with --source local")
    if args.text_dir and not args.text_dir.is_dir():
        parser.error(f"--text-dir {args.text_dir}: not a directory")
    num_shards = MAX_SHARD if args.num_shards == -1 else args.num_shards
    if num_shards < 1:
        parser.error("--num-shards must be at least 1 (or -1 for all)")

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Two runners may start prepare.py at once on one cache: the second waits, then finds it complete.
    with FileLock(str(CACHE_DIR / ".prepare.lock")):
        return prepare(
            args.source,
            args.text_dir,
            num_shards,
            args.base_url,
            args.download_workers,
            args.retries,
            args.retry_wait,
        )


if __name__ == "__main__":
    sys.exit(main())
