"""Open a handed-over model (a torch.export archive, model.pt2) without running anything its author wrote.

A `.pt2` archive is data an agent controls, and torch's loader trusts it (pickled weights, `sympify` of
symbolic shapes, `exec` of guard code, call targets naming any `torch` attribute). So the archive is
checked before torch reads it (only a plain export's files, nothing pickled, every call target an `aten`
operator) and the graph after (pure `aten` calls, nothing mutated between calls, one static integer input).
strip_metadata_asserts then drops the dtype asserts torch.export pins at trace time, which would fail an
honest model under bf16 autocast. Whatever fails is `ArtifactRejected`: the run is `invalid`, never the
runner's crash. Long story: docs/trust.md.
"""

from __future__ import annotations

import io
import json
import operator
import re
import zipfile
from typing import Any

from swarm.errors import ArtifactRejected

# Names a plain `torch.export.save` of one program writes, below the archive's root folder.
_ALLOWED_NAMES = re.compile(
    r"(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/model\.json"
    r"|data/weights/model_weights_config\.json|data/weights/weight_\d+"
    r"|data/constants/model_constants_config\.json|data/constants/tensor_\d+"
    r"|data/sample_inputs/model\.pt)"
)
_ALLOWED_TARGET = re.compile(r"torch\.ops\.aten\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+|_operator\.getitem")
# aten operators that reach outside the tensors they are given.
_DENIED_OPS = frozenset({"from_file", "_make_dep_token", "save", "_print", "_assert_async"})
MAX_UNPACKED_RATIO = 4  # an archive may unpack to at most this many times its size (no zip bombs)


def check_archive(data: bytes) -> None:
    """Refuse an archive torch's loader would run code from (see the module docstring)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as e:
        raise ArtifactRejected(f"not a torch.export archive: {e}") from None
    if sum(i.file_size for i in infos) > MAX_UNPACKED_RATIO * max(len(data), 1 << 20):
        raise ArtifactRejected("the archive unpacks to far more than its size")
    roots = {i.filename.split("/", 1)[0] for i in infos}
    if len(roots) != 1:
        raise ArtifactRejected("the archive has more than one root folder")
    root = roots.pop()
    for info in infos:
        rest = info.filename[len(root) + 1 :]
        if not info.is_dir() and not _ALLOWED_NAMES.fullmatch(rest):
            raise ArtifactRejected(f"unexpected file in the archive: {rest[:80]!r}")
    names = {i.filename for i in infos}

    def read_json(rest: str) -> Any:
        if f"{root}/{rest}" not in names:
            raise ArtifactRejected(f"the archive has no {rest}")
        try:
            return json.loads(archive.read(f"{root}/{rest}"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ArtifactRejected(f"{rest} is not JSON: {e}") from None

    for config in ("data/weights/model_weights_config.json", "data/constants/model_constants_config.json"):
        for name, entry in (read_json(config).get("config") or {}).items():
            if not isinstance(entry, dict) or entry.get("use_pickle") is not False:
                raise ArtifactRejected(f"{name[:80]!r} is stored as a pickle, not as a plain tensor")
    _check_program_json(read_json("models/model.json"))


def _check_program_json(program: Any) -> None:
    if not isinstance(program, dict):
        raise ArtifactRejected("models/model.json is not an object")
    if program.get("guards_code"):
        raise ArtifactRejected("the program carries guard code")
    if program.get("range_constraints"):
        raise ArtifactRejected("the program has symbolic shapes (export it with a static input shape)")
    stack = [program]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "expr_str" in item:
                raise ArtifactRejected(
                    "the program has symbolic shapes (export it with a static input shape)"
                )
            target = item.get("target")
            if isinstance(target, str) and "inputs" in item and not _ALLOWED_TARGET.fullmatch(target):
                raise ArtifactRejected(f"the program calls {target[:80]!r}, which is not an aten operator")
            if item.get("custom_obj_values"):
                raise ArtifactRejected("the program holds custom objects")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_program(program, batch: int | None = None, seq_len: int | None = None) -> tuple[int, int]:
    """Check a loaded ExportedProgram's graphs and signature; returns its static input shape (B, T)."""
    import torch

    signature = program.graph_signature
    if signature.buffers_to_mutate or signature.user_inputs_to_mutate:
        raise ArtifactRejected("the program changes its own state between calls")
    for module in program.graph_module.modules():
        graph = getattr(module, "graph", None)
        if graph is None:
            continue
        for node in graph.nodes:
            if node.op in ("placeholder", "output", "get_attr"):
                continue
            if node.op != "call_function":
                raise ArtifactRejected(f"the program has a {node.op} node")
            _check_target(node.target, torch)
    inputs = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in signature.user_inputs]
    if len(signature.user_inputs) != 1 or len(inputs) != 1:
        raise ArtifactRejected("the program must take exactly one input, the token ids (B, T)")
    value = inputs[0].meta.get("val")
    shape = tuple(getattr(value, "shape", ()))
    if len(shape) != 2 or not all(isinstance(s, int) for s in shape) or value.dtype != torch.long:
        raise ArtifactRejected("the program's input must be a static (B, T) tensor of int64 token ids")
    if seq_len is not None and shape[1] != seq_len:
        raise ArtifactRejected(f"the program reads {shape[1]} tokens per row, the profile {seq_len}")
    return shape[0], shape[1]


def _check_target(target, torch) -> None:
    if target is operator.getitem:
        return
    if not isinstance(target, torch._ops.OpOverload) or target.namespace != "aten":
        raise ArtifactRejected(f"the program calls {str(target)[:80]!r}, which is not an aten operator")
    schema = target._schema
    if schema.is_mutable or target._opname in _DENIED_OPS or any(a.is_out for a in schema.arguments):
        raise ArtifactRejected(f"the program calls {target}, which writes outside its result")


def strip_metadata_asserts(program) -> int:
    """Remove the traced-dtype asserts from a checked program's graphs (see the module docstring); returns
    how many were removed. Only that one operator, and only nodes nothing reads, so what check_program
    accepted is what runs, less the asserts."""
    import torch

    target = torch.ops.aten._assert_tensor_metadata.default
    removed = 0
    for module in program.graph_module.modules():
        graph = getattr(module, "graph", None)
        if graph is None:
            continue
        asserts = [n for n in graph.nodes if n.op == "call_function" and n.target is target and not n.users]
        for node in asserts:
            graph.erase_node(node)
        if asserts:
            module.recompile()
            removed += len(asserts)
    return removed
