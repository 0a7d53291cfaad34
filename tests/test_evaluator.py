"""The sealed evaluator on handed-over models: honest but unusual models measure, and archives or programs
that would run their author's code, keep state, look ahead or break the output contract are refused.

Models are exported in-process with prepare.export_model (as train.py hands them over) and measured with
the evaluator's own functions on the tiny cache's evaluation files; the one attack that would run code on
load goes through the evaluator process exactly as the runner starts it."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from swarm.board.experiments import BAD_MODEL, LOOKS_AHEAD
from swarm.errors import ArtifactRejected, DeviceFault, ModelRejected
from swarm.runner import evaluator
from swarm.runner.artifact import check_archive
from tests.support.target import evaluate_model, load_prepare, uniform_bpb

VOCAB, T = 2048, 256


@pytest.fixture(scope="module")
def prep(tiny_cache):
    return load_prepare(tiny_cache)


@pytest.fixture(scope="module")
def eval_data(tiny_cache):
    rows = np.load(tiny_cache / "eval" / "val_tokens.npy")
    return rows, np.load(tiny_cache / "eval" / "token_bytes.npy")


def export(prep, model, path, batch=4) -> bytes:
    prep.export_model(model, batch, path)
    return path.read_bytes()


def measure(data: bytes, eval_data, seed=0) -> float:
    rows, token_bytes = eval_data
    return evaluator.evaluate_program(evaluator.load_model(data, T), rows, token_bytes, seed=seed)


class Bigram(torch.nn.Module):
    """Logits from a table indexed by the current token (zeros: every token equally likely)."""

    def __init__(self):
        super().__init__()
        self.table = torch.nn.Parameter(torch.zeros(VOCAB, VOCAB))

    def forward(self, idx):
        return self.table[idx]


class PeeksAtTarget(Bigram):
    """Reads its target: the next input token, rolled into view."""

    def forward(self, idx):
        nxt = torch.roll(idx, -1, dims=1)
        return self.table[idx] + 20.0 * F.one_hot(nxt, VOCAB).float()


class Bf16Attention(torch.nn.Module):
    """An honest causal model that computes in bf16 (the noise the causality tolerance must pass)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(VOCAB, 64)
        self.head = torch.nn.Linear(64, VOCAB)

    def forward(self, idx):
        x = self.emb(idx).to(torch.bfloat16)
        q = k = v = x.view(idx.size(0), idx.size(1), 4, 16).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(x.shape)
        return self.head(y.float() + x.float())


class Counter(Bigram):
    """Keeps state between calls: a program that could tell the check's calls from the evaluation's."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, idx):
        self.calls.add_(1)
        return self.table[idx] + self.calls


def test_a_uniform_model_measures_exactly_log2_vocab_per_token_over_bytes(
    prep, eval_data, tiny_cache, tmp_path
):
    value = measure(export(prep, Bigram(), tmp_path / "m.pt2"), eval_data)
    # each token's cross-entropy is float32's ln(2048): exact to about 3e-8, not to 1e-9
    assert value == pytest.approx(uniform_bpb(tiny_cache), rel=1e-7)


@pytest.mark.slow  # exports and measures two GPTs (about 40 s)
@pytest.mark.parametrize("pattern, depth", [("SL", 3), ("L", 1)])
def test_honest_unusual_gpts_evaluate(prep, eval_data, tiny_cache, tmp_path, pattern, depth):
    import train

    config = train.GPTConfig(T, VOCAB, depth, 2, 64, pattern, 32)
    model = train.GPT(config)
    model.init_weights()
    model.prepare_attention("cpu", use_flex=False)
    value = measure(export(prep, model, tmp_path / "m.pt2"), eval_data, seed=depth)
    assert abs(value - uniform_bpb(tiny_cache)) < 0.1  # untrained: close to uniform, and finite


def test_a_bf16_model_passes_the_causality_check(prep, eval_data, tmp_path):
    value = measure(export(prep, Bf16Attention(), tmp_path / "m.pt2"), eval_data)
    assert np.isfinite(value)


def test_a_model_that_reads_its_targets_is_rejected(prep, eval_data, tmp_path):
    data = export(prep, PeeksAtTarget(), tmp_path / "m.pt2")
    with pytest.raises(ModelRejected, match=LOOKS_AHEAD):
        measure(data, eval_data)


def test_a_stateful_program_is_rejected(prep, eval_data, tmp_path):
    data = export(prep, Counter(), tmp_path / "m.pt2")
    with pytest.raises(ModelRejected, match="changes its own state|writes outside its result"):
        measure(data, eval_data)


def test_wrong_output_shapes_and_non_finite_logits_are_bad_models(prep, eval_data, tmp_path):
    class Narrow(Bigram):
        def forward(self, idx):
            return self.table[idx][..., :100]

    class NotFinite(Bigram):
        def forward(self, idx):
            return self.table[idx] / 0.0

    for model, reason in ((Narrow(), "logits per token"), (NotFinite(), "not finite")):
        data = export(prep, model, tmp_path / f"{reason}.pt2")
        with pytest.raises(ModelRejected, match=f"{BAD_MODEL}.*{reason}"):
            measure(data, eval_data)


# ---------------------------------------------------------------------------------------------------------
# Archives that would run code in the evaluator


def rewrite(data: bytes, edit) -> bytes:
    """The archive with edit(name, bytes) -> bytes applied to every member."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, edit(info.filename.split("/", 1)[1], src.read(info)))
    return out.getvalue()


def edit_json(member: str, change):
    def edit(name, raw):
        if name != member:
            return raw
        value = json.loads(raw)
        change(value)
        return json.dumps(value).encode()

    return edit


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def honest(prep, tmp_path):
    return export(prep, Bigram(), tmp_path / "honest.pt2")


def _weights_to_pickle(config):
    config["config"]["table"]["use_pickle"] = True


def _guard_code(program):
    program["guards_code"] = ["__import__('os').system('true')"]


def _symbolic(program):
    program["graph_module"]["graph"]["sym_int_values"] = {"s0": {"as_expr": {"expr_str": "exec(chr(49))"}}}


def _any_torch_attribute(program):
    program["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"


@pytest.mark.parametrize(
    "member, change, reason",
    [
        ("data/weights/model_weights_config.json", _weights_to_pickle, "pickle"),
        ("models/model.json", _guard_code, "guard code"),
        ("models/model.json", _symbolic, "symbolic shapes"),
        ("models/model.json", _any_torch_attribute, "not an aten operator"),
    ],
)
def test_archives_torch_would_run_code_from_are_refused_before_loading(honest, member, change, reason):
    with pytest.raises(ArtifactRejected, match=reason):
        check_archive(rewrite(honest, edit_json(member, change)))


def test_extra_members_are_refused(honest):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(honest)) as src, zipfile.ZipFile(out, "a") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        root = src.infolist()[0].filename.split("/", 1)[0]
        dst.writestr(f"{root}/data/constants/opaque_obj_0", pickle.dumps(1))
    with pytest.raises(ArtifactRejected, match="unexpected file"):
        check_archive(out.getvalue())


def test_a_pickled_payload_never_runs_in_the_evaluator_process(honest, tiny_cache, tmp_path):
    """The archive a naive torch.export.load would execute (pickled weights load with weights_only=False):
    the evaluator, started as the runner starts it, rejects it and the payload's marker never appears."""
    marker = tmp_path / "payload-ran"
    buffer = io.BytesIO()
    torch.save(Payload(marker), buffer)

    def edit(name, raw):
        if name == "data/weights/weight_0":
            return buffer.getvalue()
        return edit_json("data/weights/model_weights_config.json", _weights_to_pickle)(name, raw)

    model = tmp_path / "model.pt2"
    model.write_bytes(rewrite(honest, edit))
    outcome = evaluate_model(model, tiny_cache)
    assert outcome["outcome"] == "invalid" and "pickle" in outcome["reason"], outcome
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["missing", "link", "huge"])
def test_model_files_are_read_as_plain_files_within_the_size_limit(tiny_cache, tmp_path, kind):
    model = tmp_path / "model.pt2"
    if kind == "link":
        model.symlink_to("/dev/zero")
    elif kind == "huge":
        model.write_bytes(b"\0" * 2_000_000)
    outcome = evaluate_model(model, tiny_cache, **{"--max-model-bytes": "1000000"})
    assert outcome["outcome"] == "invalid" and outcome["reason"].startswith(BAD_MODEL), outcome


# ---------------------------------------------------------------------------------------------------------
# The CUDA path on a CPU: compiled, under bf16 autocast (the evaluator's --mirror)


def train_py_model(seed: int = 0):
    """train.py's GPT at its tiny-profile shape, its weights moved off the (near-uniform) initialisation so
    that precision shows in the result."""
    import train

    torch.manual_seed(seed)
    width = -(-train.DEPTH * train.ASPECT_RATIO // train.HEAD_DIM) * train.HEAD_DIM
    config = train.GPTConfig(T, VOCAB, train.DEPTH, width // train.HEAD_DIM, width, train.WINDOW_PATTERN, 128)
    model = train.GPT(config)
    model.init_weights()
    model.prepare_attention("cpu", use_flex=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_the_traced_dtype_asserts_are_checked_then_stripped_and_the_casts_kept(prep, tmp_path):
    """torch.export puts an `aten._assert_tensor_metadata(dtype=float32)` before every cast of train.py's
    model: under bf16 autocast the first one failed every honest model. The archive check still sees them
    (they are aten operators it allows); the loaded program has none, and still casts."""
    data = export(prep, train_py_model(), tmp_path / "m.pt2")
    raw = torch.export.load(io.BytesIO(data))
    asserts = [n for n in raw.graph.nodes if n.target is torch.ops.aten._assert_tensor_metadata.default]
    casts = [n for n in raw.graph.nodes if n.target is torch.ops.aten.to.dtype]
    assert asserts and casts
    program = evaluator.load_model(data, T)
    targets = [n.target for n in program.graph.nodes]
    assert torch.ops.aten._assert_tensor_metadata.default not in targets
    assert targets.count(torch.ops.aten.to.dtype) == len(casts)


@pytest.mark.slow  # compiles train.py's model (over a minute)
def test_a_train_py_model_measures_the_same_compiled_under_bf16_autocast(
    prep, eval_data, tmp_path, monkeypatch
):
    """The evaluation as on CUDA, on a CPU (--mirror): train.py's tiny model, compiled under bf16 autocast,
    measures what it measures in fp32 within bf16 noise (it failed on the traced-dtype asserts before).
    Causality is tested below: a few cut rows here keep this to one compile and a few forwards."""
    monkeypatch.setattr(evaluator, "CAUSALITY_ROWS", 16)
    rows, token_bytes = eval_data
    rows = rows[:64]
    data = export(prep, train_py_model(), tmp_path / "m.pt2")
    fp32 = evaluator.evaluate_program(evaluator.load_model(data, T, batch=16), rows, token_bytes)
    bf16 = evaluator.evaluate_program(evaluator.load_model(data, T, batch=16), rows, token_bytes, mirror=True)
    assert bf16 != fp32  # bf16 did run: the same numbers would mean autocast never applied
    assert bf16 == pytest.approx(fp32, rel=2e-3)


def test_a_program_of_another_batch_size_than_the_evaluators_is_a_bad_model(prep, tmp_path):
    program = torch.export.export(Bigram(), (torch.zeros((3, T), dtype=torch.long),))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    with pytest.raises(ModelRejected, match=f"{BAD_MODEL}.*batches of 3 rows, the evaluator's are 16"):
        evaluator.load_model((tmp_path / "m.pt2").read_bytes(), T, batch=16)
    prep.export_model(Bigram(), 3, tmp_path / "m.pt2")  # export_model exports for the evaluator's batch
    assert evaluator.load_model((tmp_path / "m.pt2").read_bytes(), T, batch=16).batch_size == 16


# ---------------------------------------------------------------------------------------------------------
# Look-ahead where the model cannot see the check (issue 23): batches of the evaluator's size, rows shuffled
# with a secret seed, cuts drawn independently of position and row


class Peeks(Bigram):
    """Reads its target (the next token) only where `where` holds: every position, 1 position in 16 or in
    64, the rows whose first text token has a property, or the positions whose token has one (about 1 in
    50 of either)."""

    def __init__(self, where: str):
        super().__init__()
        self.where = where

    def forward(self, idx):
        pos = torch.arange(idx.size(1), device=idx.device)[None, :].expand(idx.size(0), -1)
        mask = {
            "all": pos >= 0,
            "1 in 16": pos % 16 == 0,
            "1 in 64": pos % 64 == 0,
            "rows": (idx[:, 1:2] % 32 == 0).expand(-1, idx.size(1)),
            "tokens": idx % 32 == 0,
        }[self.where]
        nxt = torch.roll(idx, -1, dims=1)
        return self.table[idx] + 20.0 * F.one_hot(nxt, VOCAB).float() * mask[..., None].float()


def test_enough_rows_are_cut_that_a_peek_at_1_position_in_64_passes_at_most_1_in_1000_runs():
    for batch in (16, 32):  # the profiles' evaluation batch sizes: whole batches are cut
        cut_rows = -(-evaluator.CAUSALITY_ROWS // batch) * batch
        assert (1 - 1 / 64) ** cut_rows <= 1e-3


@pytest.mark.slow  # every seed of five peeking models
@pytest.mark.parametrize("where", ["all", "1 in 16", "1 in 64", "rows", "tokens"])
def test_sparse_and_conditional_peeks_are_caught_on_every_seed(prep, eval_data, tmp_path, where):
    rows, _ = eval_data
    if where == "rows":  # the peeking rows (row 0 is the BOS token): a few, but some
        assert 0 < int((rows[:, 1] % 32 == 0).sum()) < len(rows) // 16
    data = export(prep, Peeks(where), tmp_path / "m.pt2")
    for seed in (1, 7, 42, 1234, 99991):
        with pytest.raises(ModelRejected, match=LOOKS_AHEAD):
            measure(data, eval_data, seed=seed)


@pytest.mark.slow  # every seed of two models
@pytest.mark.parametrize("model", [Bigram, Bf16Attention])
def test_honest_models_pass_on_every_seed_and_the_shuffle_does_not_change_val_bpb(
    prep, eval_data, tmp_path, model
):
    data = export(prep, model(), tmp_path / "m.pt2")
    values = [measure(data, eval_data, seed=seed) for seed in (1, 7, 42)]
    assert max(values) - min(values) < 1e-6 * values[0]  # the order of the batches: summation noise only


# ---------------------------------------------------------------------------------------------------------
# Faults of the machine are the runner's, never the model's


def test_a_compiler_that_fails_is_a_device_error_before_any_model_is_read(
    honest, tiny_cache, tmp_path, monkeypatch
):
    """The evaluator as the runner starts it, compiling as on CUDA (--mirror) with a C++ compiler that fails:
    its device check reports the machine's fault (`device_error`: the runner requeues and stops), not the
    model's."""
    monkeypatch.setenv("CXX", "/bin/false")
    model = tmp_path / "model.pt2"
    model.write_bytes(honest)
    outcome = evaluate_model(model, tiny_cache, flags=("--mirror",))
    assert outcome["outcome"] == "device_error", outcome
    assert "device (cpu) fails its check" in outcome["reason"]


def test_a_compiled_forward_that_fails_where_the_eager_one_works_is_the_machines_if_its_check_fails(
    honest, eval_data, monkeypatch
):
    """A compiled forward that fails while the eager program runs: the device check runs again and decides.
    A device that fails it now is the machine's fault; one that passes leaves this program to blame (else a
    program made to break the compiler would stop every runner it is requeued on)."""
    program = evaluator.load_model(honest, T)
    forward = evaluator.Forward(program, torch.device("cpu"), compiled=False)

    def broken(idx):
        raise RuntimeError("InductorError: CppCompileError: C++ compile error")

    forward.module = broken  # as a miscompiled forward would: the eager program still runs
    rows, token_bytes = eval_data
    tensors = (torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(token_bytes.astype(np.int64)))

    def compiler_gone(dev):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    with monkeypatch.context() as patched:
        patched.setattr(evaluator, "_compile_probe", compiler_gone)
        with pytest.raises(DeviceFault, match="device \\(cpu\\) fails its check.*InvalidCxxCompiler"):
            evaluator.bits_per_byte(forward, *tensors, torch.Generator().manual_seed(0))
    monkeypatch.setattr(evaluator, "_compile_probe", lambda dev: None)  # the device passes its check
    with pytest.raises(ModelRejected, match=f"{BAD_MODEL}: its program fails compiled where it runs eagerly"):
        evaluator.bits_per_byte(forward, *tensors, torch.Generator().manual_seed(0))
    forward.eager = broken  # both fail: the model's fault
    with pytest.raises(ModelRejected, match=f"{BAD_MODEL}: it fails on a batch"):
        forward(torch.zeros((16, T), dtype=torch.long))


def test_no_cuda_on_a_gpu_slot_is_a_device_fault():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceFault, match="no usable CUDA device"):
        evaluator.check_device("cuda", compiled=False, logits_shape=(16, T, VOCAB))


def test_the_evaluators_batch_size_is_read_from_prepare_py_and_optional(prep):
    from swarm.target.profiles import profile_constants
    from tests.support.target import REPO_ROOT

    source = (REPO_ROOT / "prepare.py").read_text()
    assert profile_constants(source, "tiny")["eval_batch_size"] == prep.EVAL_BATCH_SIZE == 16
    assert profile_constants(source, "h100")["eval_batch_size"] == 32
    older = source.replace('"eval_batch_size": 16,', "")  # a prepare.py from before: the program's own
    assert "eval_batch_size" not in profile_constants(older, "tiny")
