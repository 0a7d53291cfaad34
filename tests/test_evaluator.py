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
from swarm.errors import ArtifactRejected, ModelRejected
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
