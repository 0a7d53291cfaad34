"""train.py: its hyperparameter block, the pieces an agent is most likely to break (attention masks,
orthogonalisation), one real tiny-profile run on the CPU whose handed-over model the sealed evaluator
measures, and the fail-fast path on a NaN config."""

import ast
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from swarm.target.summary import SUMMARY_KEYS, parse_summary
from tests.support.target import REPO_ROOT, evaluate_model, load_prepare, tiny_env, uniform_bpb

# Knobs published swarms moved, which agents and the sweep agent must be able to move, one line each.
REQUIRED_KNOBS = {
    "DEPTH", "ASPECT_RATIO", "HEAD_DIM", "WINDOW_PATTERN", "SHORT_WINDOW", "ROPE_BASE", "QK_NORM_BEFORE_ROPE",
    "Q_SCALE", "SOFTCAP", "TOTAL_BATCH_SIZE", "DEVICE_BATCH_SIZE", "EMBEDDING_LR", "UNEMBEDDING_LR", "MATRIX_LR",
    "SCALAR_LR", "ADAM_BETAS", "WEIGHT_DECAY", "MUON_MOMENTUM", "MUON_BETA2", "MUON_NS_STEPS", "WARMUP_RATIO",
    "WARMDOWN_RATIO", "FINAL_LR_FRAC",
}  # fmt: skip


def literal_assignments(statements) -> dict[str, object]:
    """NAME = literal statements among `statements`, as a parser such as the sweep agent reads them."""
    found = {}
    for node in statements:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.isupper():
                found[name] = ast.literal_eval(node.value)
    return found


def test_hyperparameter_block_is_one_literal_per_line_with_a_tiny_override_block():
    source = (REPO_ROOT / "train.py").read_text()
    tree = ast.parse(source)
    top = literal_assignments(tree.body)
    assert set(top) >= REQUIRED_KNOBS
    lines = source.splitlines()
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id in REQUIRED_KNOBS:
            assert node.lineno == node.end_lineno, f"{node.targets[0].id} spans several lines"
            assert "#" in lines[node.lineno - 1], f"{node.targets[0].id} has no comment"
    overrides = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "PROFILE == 'tiny'"]
    assert len(overrides) == 1
    block = overrides[0]
    assert not block.orelse and all(isinstance(n, ast.Assign) for n in block.body)
    tiny = literal_assignments(block.body)
    assert len(tiny) == len(block.body) and set(tiny) <= set(top)
    assert top["TOTAL_BATCH_SIZE"] == 2**19 and top["DEPTH"] == 8  # the h100 profile keeps upstream's shape
    # The override block comes right after the top-level knobs, before any code.
    first_def = min(n.lineno for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef))
    assert block.lineno < first_def


@pytest.fixture(scope="module")
def train_module():
    import train

    return train


@pytest.mark.filterwarnings("ignore:.*flex_attention called without torch.compile")
def test_sliding_window_attention_agrees_between_flex_and_sdpa(train_module):
    """The CUDA path (FlexAttention block mask) and the CPU path (SDPA boolean mask) compute the same thing;
    flex runs eagerly here, which is slow but exact."""
    T, window = 256, 80
    q, k, v = (torch.randn(2, 3, T, 16) for _ in range(3))
    masks_cpu = {window: train_module.sliding_window_mask(T, window, "cpu")}
    masks_flex = {window: train_module.flex_block_mask(T, window, "cpu")}
    sdpa = train_module.attention(q, k, v, window, 0.25, masks_cpu)
    flex = train_module.attention(q, k, v, window, 0.25, masks_flex)
    assert torch.allclose(sdpa, flex, atol=1e-5)
    # A window as long as the context is plain causal attention.
    full = train_module.attention(q, k, v, T, 0.25, {})
    assert torch.allclose(
        full, F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.25), atol=1e-6
    )
    # A query at position t sees exactly keys t-window+1 .. t.
    mask = masks_cpu[window]
    assert mask[100, 21:101].all() and not mask[100, :21].any() and not mask[100, 101:].any()


def test_orthogonalize_pushes_singular_values_towards_one(train_module):
    torch.manual_seed(0)
    # Rectangular Gaussian matrices scaled unevenly: condition numbers in the tens to hundreds, as gradients.
    for shape in ((128, 32), (32, 128), (3, 16, 48), (96, 64)):
        G = torch.randn(*shape) * torch.logspace(-1.5, 0.5, shape[-1])
        X = train_module.orthogonalize(G, 5, torch.float32)
        s = torch.linalg.svdvals(X)
        assert X.shape == G.shape
        assert s.min() > 0.7 and s.max() < 1.2, (shape, s.min(), s.max())


# ---------------------------------------------------------------------------
# Real runs


def run_train(workdir: Path, cache: Path, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "train.py"],
        cwd=workdir,
        env=tiny_env(cache),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc, time.monotonic() - start


@pytest.mark.slow  # the real tiny trainer
def test_tiny_profile_trains_on_the_cpu_and_hands_over_a_model_the_evaluator_measures(tiny_cache, tmp_path):
    prep = load_prepare(tiny_cache)
    for name in ("train.py", "prepare.py"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    proc, _ = run_train(tmp_path, tiny_cache, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    block = proc.stdout[proc.stdout.rindex("\n---\n") + 5 :].splitlines()
    # the upstream block without val_bpb, which is the evaluator's to measure
    assert [line.split(":")[0] for line in block] == [k for k in SUMMARY_KEYS if k != "val_bpb"]
    assert all(line[18:19] != " " and len(line.split(":")[0]) < 18 for line in block)  # values in column 19
    summary = parse_summary(proc.stdout)
    assert summary["profile"] == "tiny" and summary["device"].startswith("cpu")
    assert summary["peak_vram_mb"] == 0.0 and summary["mfu_percent"] == 0.0
    assert summary["depth"] == 2 and summary["num_steps"] > 5
    # it stops before a step that would end past the budget: at most one step short, over only by slowness
    assert prep.TIME_BUDGET / 2 <= summary["training_seconds"] <= prep.TIME_BUDGET + 3
    assert summary["total_seconds"] >= summary["training_seconds"]
    outcome = evaluate_model(tmp_path / "model.pt2", tiny_cache)
    untrained = uniform_bpb(tiny_cache)
    assert outcome["outcome"] == "measured", outcome
    assert outcome["val_bpb"] < 0.75 * untrained, (outcome, untrained)


def test_a_nan_inducing_config_fails_fast(tiny_cache, tmp_path):
    """As an agent would: edit the tiny override block of a copy of train.py (an absurd attention scale
    overflows the attention logits into NaN at the first step; an absurd learning rate no longer does on the
    secret-split training text, whose normalised residual stream it only saturates)."""
    shutil.copy(REPO_ROOT / "prepare.py", tmp_path / "prepare.py")
    source = (REPO_ROOT / "train.py").read_text()
    marker = 'if PROFILE == "tiny":\n'
    assert marker in source
    (tmp_path / "train.py").write_text(source.replace(marker, marker + "    Q_SCALE = 1e30\n"))
    proc, _ = run_train(tmp_path, tiny_cache, timeout=120)
    assert proc.returncode != 0
    assert "FAIL" in proc.stdout and "training_seconds:" not in proc.stdout
    # It did not train out its budget first: it stopped within a few steps (counted in steps, not seconds,
    # so a loaded machine's slow start cannot fail the test).
    failed_at = re.search(r"FAIL.* at step (\d+)", proc.stdout)
    assert failed_at and int(failed_at.group(1)) <= 5, proc.stdout[-2000:]


def test_train_without_prepared_data_says_what_to_do(tmp_path):
    proc, _ = run_train(REPO_ROOT, tmp_path, timeout=60)
    assert proc.returncode != 0
    assert "run `python prepare.py` first" in proc.stderr and "Traceback" not in proc.stderr


def test_attention_runs_in_the_autocast_dtype(train_module, monkeypatch):
    """Under bf16 autocast (the CUDA path) q, k and v reach the kernel in bf16 in every layer, value-embedding
    layers included; fp32 inputs would silently rule out the flash kernels."""
    config = train_module.GPTConfig(64, 512, 2, 2, 64, "SL", 32)
    model = train_module.GPT(config)
    model.init_weights()
    model.prepare_attention(torch.device("cpu"), use_flex=False)
    seen = []
    real = train_module.attention

    def spy(q, k, v, *args):
        seen.append((q.dtype, k.dtype, v.dtype))
        return real(q, k, v, *args)

    monkeypatch.setattr(train_module, "attention", spy)
    idx = torch.randint(0, 512, (2, 64))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(idx, idx)
    assert seen == [(torch.bfloat16,) * 3] * 2
    assert loss.dtype == torch.float32


def test_the_compile_warmup_trains_nothing(train_module, monkeypatch):
    """The warm-up before the training window steps on dummy batches, then puts weights and optimizer back:
    a run's compile buys no training (swarm.runner.clock)."""
    from contextlib import nullcontext

    monkeypatch.setattr(train_module, "DEVICE_BATCH_SIZE", 2)
    monkeypatch.setattr(train_module, "MAX_SEQ_LEN", 32)
    config = train_module.GPTConfig(
        sequence_len=32, vocab_size=64, n_layer=2, n_head=2, n_embd=64, window_pattern="SL", short_window=16
    )
    torch.manual_seed(0)
    model = train_module.GPT(config)
    model.init_weights()
    model.prepare_attention(torch.device("cpu"), use_flex=False)
    optimizer = train_module.MuonAdamW(model.param_groups(), compile_steps=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = [id(p) for p in model.parameters()]
    train_module.compile_warmup(model, model, optimizer, 1, nullcontext(), torch.device("cpu"), steps=2)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert params == [
        id(p) for p in model.parameters()
    ]  # the same tensors: a traced program still holds them
    assert not optimizer.state
