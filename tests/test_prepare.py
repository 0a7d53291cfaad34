"""prepare.py: profiles, both data sources (local build, HTTP download with retries), tokenizer, dataloader,
the evaluation files in eval/ and the manifest of hashes. Real prepare.py subprocesses into temporary caches;
a loopback HTTP server."""

import ast
import hashlib
import http.server
import json
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
import torch

from tests.support.target import REPO_ROOT, load_prepare, run_prepare, tiny_env


def file_digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


# ---------------------------------------------------------------------------
# Profiles


def test_profiles_are_plain_literals_with_the_upstream_h100_constants():
    tree = ast.parse((REPO_ROOT / "prepare.py").read_text())
    node = next(
        n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PROFILES"
    )
    profiles = ast.literal_eval(node.value)
    assert set(profiles) >= {"h100", "tiny"}
    for settings in profiles.values():
        assert {"max_seq_len", "vocab_size", "time_budget", "eval_tokens"} <= set(settings)
    assert profiles["h100"]["max_seq_len"] == 2048
    assert profiles["h100"]["vocab_size"] == 8192
    assert profiles["h100"]["time_budget"] == 300
    assert profiles["h100"]["eval_tokens"] == 40 * 524288


def test_profile_constants_follow_the_environment(tmp_path):
    tiny = load_prepare(tmp_path, "tiny")
    h100 = load_prepare(tmp_path, "h100")
    assert (tiny.PROFILE, tiny.MAX_SEQ_LEN, tiny.VOCAB_SIZE) == ("tiny", 256, 2048)
    assert (h100.PROFILE, h100.MAX_SEQ_LEN, h100.TIME_BUDGET, h100.EVAL_TOKENS) == (
        "h100",
        2048,
        300,
        20971520,
    )
    assert tmp_path == tiny.CACHE_DIR


def test_unknown_profile_is_a_one_line_error(tmp_path):
    proc = run_prepare(tmp_path, "--source", "local", env=tiny_env(tmp_path, AUTORESEARCH_PROFILE="a100-xl"))
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0
    assert "a100-xl" in proc.stderr and "h100" in proc.stderr


# ---------------------------------------------------------------------------
# Local source


def test_local_source_builds_the_same_bytes_twice(tiny_cache, tmp_path):
    proc = run_prepare(tmp_path, "--source", "local")
    assert proc.returncode == 0, proc.stderr
    first, second = file_digests(tiny_cache), file_digests(tmp_path)
    shards = [name for name in first if name.startswith("data/")]
    assert shards == ["data/shard_00000.parquet", "data/shard_00001.parquet"]  # training only
    evaluation = [name for name in first if name.startswith("eval/")]
    assert evaluation == [
        "eval/holdout_tokens.npy",
        "eval/shard_06542.parquet",
        "eval/token_bytes.npy",
        "eval/val_tokens.npy",
    ]
    # what trainers read is the same bytes every time; what they are measured on is drawn with a secret
    public = {n: d for n, d in first.items() if n.startswith(("data/", "tokenizer/"))}
    assert public == {n: d for n, d in second.items() if n.startswith(("data/", "tokenizer/"))}
    assert first["eval/token_bytes.npy"] == second["eval/token_bytes.npy"]
    for name in ("eval/shard_06542.parquet", "eval/val_tokens.npy", "eval/holdout_tokens.npy"):
        assert first[name] != second[name]
    manifest = json.loads((tiny_cache / "prepared.json").read_text())
    assert manifest["layout"] == 3
    assert manifest["sha256"] == {n: d for n, d in first.items() if n != "prepared.json"}


def test_second_prepare_does_nothing(tiny_cache):
    before = {p: p.stat().st_mtime_ns for p in tiny_cache.rglob("*") if p.is_file() and p.suffix != ".lock"}
    proc = run_prepare(tiny_cache, "--source", "local")
    assert proc.returncode == 0, proc.stderr
    assert "already prepared" in proc.stdout
    after = {p: p.stat().st_mtime_ns for p in tiny_cache.rglob("*") if p.is_file() and p.suffix != ".lock"}
    assert after == before


def test_a_cache_prepared_from_another_source_is_refused(tiny_cache):
    proc = run_prepare(tiny_cache, "--source", "hf", "--base-url", "http://127.0.0.1:9")
    assert proc.returncode != 0
    assert "already holds data" in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_local_source_from_a_text_dir(tmp_path):
    from pydoc_data.topics import topics

    texts = tmp_path / "texts"
    (texts / "sub").mkdir(parents=True)
    names = sorted(topics)
    for i, name in enumerate(names):
        (texts / ("sub" if i % 2 else "") / f"{name}.txt").write_text(topics[name])
    (texts / "ignored.bin").write_bytes(b"\x00\x01 not text")
    cache = tmp_path / "cache"
    proc = run_prepare(cache, "--source", "local", "--text-dir", str(texts))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    prep = load_prepare(cache)
    import pyarrow.parquet as pq

    shards = [*prep.list_parquet_files(), prep.shard_path(prep.VAL_SHARD)]
    docs = {p.name: pq.read_table(p).column("text").to_pylist() for p in shards}
    assert set(docs) == {"shard_00000.parquet", "shard_00001.parquet", "shard_06542.parquet"}
    # Files in path order, cut at paragraph boundaries; a tenth of the documents, drawn with the secret, to
    # validation, the rest dealt round-robin to the training shards; the .bin file ignored.
    files = sorted(p for p in texts.rglob("*.txt"))
    expected = [
        d
        for f in files
        for d in prep.split_into_documents(f.read_text(), prep.PROFILES["tiny"]["local_doc_chars"])
    ]
    val = docs["shard_06542.parquet"]
    assert len(val) == len(expected) // 10 and val != expected[9::10]
    first, second = docs["shard_00000.parquet"], docs["shard_00001.parquet"]
    train = [d for pair in zip(first, second, strict=False) for d in pair] + first[len(second) :]
    assert Counter(train) + Counter(val) == Counter(expected)  # every document once
    remaining = iter(expected)
    assert all(d in remaining for d in train)  # dealt round-robin in path order
    assert all(len(d) <= 1000 or "\n\n" not in d for d in expected)


def test_text_dir_too_small_for_the_vocabulary_is_a_clear_error(tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    for i in range(3):
        (texts / f"{i}.txt").write_text(f"a few words in file {i}\n\nand a second paragraph")
    proc = run_prepare(tmp_path / "cache", "--source", "local", "--text-dir", str(texts))
    assert proc.returncode != 0
    assert "more text" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------
# HF source against a loopback server


class ShardServer:
    """Serves the files of a directory over HTTP on 127.0.0.1, with scripted misbehaviour per file:
    `fail_first[name] = n` answers 503 n times; a name in `truncate` gets half its bytes, then a hang-up."""

    def __init__(self, *roots: Path):
        self.roots = roots
        self.fail_first: dict[str, int] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(name)
                path = next((r / name for r in server.roots if (r / name).is_file()), server.roots[0] / name)
                if server.fail_first.get(name, 0) > 0:
                    server.fail_first[name] -= 1
                    self.send_error(503, "try again")
                    return
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if name in server.truncate else data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/resolve/main"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.mark.slow  # downloads shards from a local server and trains a tokenizer
def test_hf_source_retries_a_failing_shard_and_trains_the_tokenizer(tiny_cache, tmp_path):
    cache = tmp_path / "cache"
    with ShardServer(tiny_cache / "data", tiny_cache / "eval") as server:
        server.fail_first["shard_00001.parquet"] = 2
        args = ("--source", "hf", "--num-shards", "2", "--retry-wait", "0.01")
        proc = run_prepare(cache, *args, env=tiny_env(cache, AUTORESEARCH_BASE_URL=server.url))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert sorted(server.requests) == sorted(
            [
                "shard_00000.parquet",
                "shard_00001.parquet",
                "shard_00001.parquet",
                "shard_00001.parquet",
                "shard_06542.parquet",
            ]
        )
        served = {n: d for n, d in file_digests(tiny_cache).items() if n.startswith("data/")}
        got = {n: d for n, d in file_digests(cache).items() if n.startswith("data/")}
        assert got == served
        assert (cache / "eval" / "token_bytes.npy").exists() and (cache / "prepared.json").exists()

        server.requests.clear()
        again = run_prepare(cache, *args, env=tiny_env(cache, AUTORESEARCH_BASE_URL=server.url))
        assert again.returncode == 0 and "already prepared" in again.stdout
        assert server.requests == []


@pytest.mark.slow  # downloads shards from a local server and trains a tokenizer
def test_hf_interrupted_transfer_leaves_no_partial_shard_and_a_rerun_resumes(tiny_cache, tmp_path):
    cache = tmp_path / "cache"
    with ShardServer(tiny_cache / "data", tiny_cache / "eval") as server:
        server.truncate.add("shard_00001.parquet")
        args = (
            "--source",
            "hf",
            "--num-shards",
            "2",
            "--base-url",
            server.url,
            "--retries",
            "2",
            "--retry-wait",
            "0.01",
        )
        proc = run_prepare(cache, *args)
        assert proc.returncode == 1
        assert "shard_00001.parquet" in proc.stderr
        left = sorted(p.name for p in [*(cache / "data").iterdir(), *(cache / "eval").iterdir()])
        assert left == ["shard_00000.parquet", "shard_06542.parquet"]  # no partial shard, no .tmp file
        assert not (cache / "prepared.json").exists() and not (cache / "tokenizer").exists()

        server.truncate.clear()
        server.requests.clear()
        proc = run_prepare(cache, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert server.requests == ["shard_00001.parquet"]
        assert (
            file_digests(cache)["data/shard_00001.parquet"]
            == file_digests(tiny_cache)["data/shard_00001.parquet"]
        )


# ---------------------------------------------------------------------------
# Tokenizer, dataloader, metric


def test_tokenizer_round_trips_and_knows_its_byte_lengths(tiny_cache):
    prep = load_prepare(tiny_cache)
    tok = prep.Tokenizer.from_directory()
    assert tok.get_vocab_size() == prep.VOCAB_SIZE == 2048
    token_bytes = prep.token_byte_lengths(tok)
    assert token_bytes.shape == (2048,)
    assert token_bytes[tok.get_bos_token_id()] == 0 and (token_bytes[:-4] > 0).all()
    samples = [
        "Hello, world!",
        "naïve café 你好 🙂\n\ttabs  and  spaces",
        "<|bos|> is ordinary text here",
        "",
    ]
    for text in samples:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert int(token_bytes[ids].sum()) == len(text.encode())
    assert tok.encode(samples, prepend=tok.get_bos_token_id())[0][0] == tok.get_bos_token_id()


def test_dataloader_packs_bos_aligned_rows_without_padding(tiny_cache):
    prep = load_prepare(tiny_cache)
    tok = prep.Tokenizer.from_directory()
    bos = tok.get_bos_token_id()
    loader = prep.make_dataloader(tok, 8, 64, "train")
    for _ in range(5):
        x, y, epoch = next(loader)
        assert x.shape == y.shape == (8, 64) and x.dtype == torch.long and epoch == 1
        assert (x[:, 0] == bos).all()
        assert (x[:, 1:] == y[:, :-1]).all()
        assert int(x.max()) < tok.get_vocab_size()
    first = [next(prep.make_dataloader(tok, 8, 64, "val"))[0] for _ in range(2)]
    assert torch.equal(first[0], first[1])  # validation rows are the same every time


def test_eval_files_hold_secret_validation_rows_and_the_byte_lengths(tiny_cache):
    import numpy as np

    prep = load_prepare(tiny_cache)
    tok = prep.Tokenizer.from_directory()
    rows = np.load(tiny_cache / "eval" / "val_tokens.npy")
    assert rows.shape == (prep.EVAL_TOKENS // prep.MAX_SEQ_LEN, prep.MAX_SEQ_LEN + 1)
    assert (rows[:, 0] == tok.get_bos_token_id()).all()  # BOS-aligned like the training rows
    x, _, _ = next(prep.make_dataloader(tok, 4, prep.MAX_SEQ_LEN, "val"))
    assert not (torch.from_numpy(rows[:4, :-1].astype(np.int64)) == x).all()  # not the shard's public order
    assert (np.load(tiny_cache / "eval" / "token_bytes.npy") == prep.token_byte_lengths(tok)).all()


def test_a_cache_from_before_the_eval_split_is_updated_in_place(tiny_cache, tmp_path, monkeypatch):
    old = tmp_path / "old"
    shutil.copytree(tiny_cache, old)
    # the old layout: validation shard among the training shards, token_bytes.pt beside the tokenizer
    (old / "eval" / "shard_06542.parquet").rename(old / "data" / "shard_06542.parquet")
    for name in ("token_bytes.npy", "val_tokens.npy", "holdout_tokens.npy"):
        (old / "eval" / name).unlink()
    (old / "eval").rmdir()
    (old / "tokenizer" / "token_bytes.pt").write_bytes(b"old")
    info = json.loads((old / "prepared.json").read_text())
    for key in ("layout", "sha256"):
        del info[key]
    (old / "prepared.json").write_text(json.dumps(info))
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(old))
    assert "predates sealed evaluation" in load_prepare(old).cache_status("tiny")
    proc = run_prepare(old, "--source", "local")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # rebuilt with a new secret: the public parts as before, new evaluation rows, a complete manifest
    before, after = file_digests(tiny_cache), file_digests(old)
    assert {n: d for n, d in after.items() if n.startswith(("data/", "tokenizer/"))} == {
        n: d for n, d in before.items() if n.startswith(("data/", "tokenizer/"))
    }
    assert set(after) == set(before) and after["eval/val_tokens.npy"] != before["eval/val_tokens.npy"]
    assert "ready at" in load_prepare(old).cache_status("tiny")


def test_a_cache_with_public_evaluation_rows_is_rebuilt_with_secret_ones(tiny_cache, tmp_path):
    """Layout 2 (rows any train.py could rebuild for --source local): prepare.py rebuilds the local data."""
    old = tmp_path / "old"
    shutil.copytree(tiny_cache, old)
    info = json.loads((old / "prepared.json").read_text())
    (old / "prepared.json").write_text(json.dumps(info | {"layout": 2}))
    proc = run_prepare(old, "--source", "local")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "secret evaluation rows" in proc.stdout
    after, before = file_digests(old), file_digests(tiny_cache)
    assert after["eval/val_tokens.npy"] != before["eval/val_tokens.npy"]
    assert json.loads((old / "prepared.json").read_text())["layout"] == 3


def test_cache_status_tells_ready_from_not_prepared(tiny_cache, tmp_path):
    """cache_status is what `swarm doctor` shows for each profile."""
    code = "import prepare; print(prepare.cache_status('tiny'))"
    ready = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=tiny_env(tiny_cache), capture_output=True, text=True
    )
    assert ready.returncode == 0 and ready.stdout.startswith("ready at"), ready.stderr
    empty = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=tiny_env(tmp_path), capture_output=True, text=True
    )
    assert empty.stdout.startswith("not prepared")
