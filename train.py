"""Pretrain a small GPT for a fixed wall-clock budget and hand the trained model over. The one file agents edit.

Usage: python train.py   (after `python prepare.py`; AUTORESEARCH_PROFILE picks the fixed constants)

The run ends with prepare.export_model: the model as a torch.export program, idx -> logits, in model.pt2.
The runner's evaluator computes val_bpb from it (`python -m swarm.runner.evaluator model.pt2` by hand).

A modern small GPT in the nanochat / autoresearch style: RoPE, QK-norm, ReLU^2 MLP, value embeddings,
per-layer residual scalars, sliding-window attention, logit softcap, untied embeddings; Muon with NorMuon
variance normalisation for the matrices and AdamW for the rest; the schedule follows elapsed training time.
On a CUDA GPU it trains in bf16 autocast under torch.compile; on a CPU in fp32, eagerly (the tiny profile), or
as on CUDA when the runner sets AUTORESEARCH_CUDA_MIRROR=1 (its CPU mirror of the CUDA path).
"""

import gc
import math
import os
import platform
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass

# OpenMP threads that wait actively spin on their cores, so two CPU runs sharing the cores slow each other
# down about tenfold; waiting passively costs nothing measurable in a run alone. Must precede `import torch`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from prepare import (  # noqa: E402
    MAX_SEQ_LEN,
    PROFILE,
    TIME_BUDGET,
    Tokenizer,
    hand_over,
    make_dataloader,
    peak_bf16_flops,
    trace_model,
    training_elapsed,
)

# ---------------------------------------------------------------------------
# Hyperparameters: one knob per line, plain literals (edit these; there are no CLI flags)
# ---------------------------------------------------------------------------

# Model shape
DEPTH = 8  # transformer blocks
ASPECT_RATIO = 64  # model width = DEPTH * ASPECT_RATIO, rounded up to a multiple of HEAD_DIM
HEAD_DIM = 128  # width of one attention head
WINDOW_PATTERN = "SSSL"  # attention span per layer, repeated over depth: S = SHORT_WINDOW, L = whole context (last layer always L)
SHORT_WINDOW = 1024  # tokens an "S" layer attends to (itself included)
ROPE_BASE = 10000.0  # rotary embedding base
QK_NORM_BEFORE_ROPE = False  # RMS-normalise queries and keys before (True) or after (False) the rotation
Q_SCALE = 1.0  # extra factor on attention logits, on top of 1/sqrt(HEAD_DIM)
SOFTCAP = 15.0  # output logits are squashed into (-SOFTCAP, SOFTCAP) with tanh

# Batch
TOTAL_BATCH_SIZE = 524288  # tokens per optimizer step (2**19)
DEVICE_BATCH_SIZE = 128  # sequences per forward/backward pass; gradient accumulation makes up the rest

# Optimizer
EMBEDDING_LR = 0.6  # AdamW, token and value embeddings (scaled by 1/sqrt(width/768))
UNEMBEDDING_LR = 0.004  # AdamW, lm_head (scaled by 1/sqrt(width/768))
MATRIX_LR = 0.04  # Muon, every matrix inside the blocks
SCALAR_LR = 0.5  # AdamW, per-layer residual scalars
ADAM_BETAS = (0.8, 0.95)  # AdamW beta1, beta2
WEIGHT_DECAY = 0.2  # cautious weight decay on Muon matrices, decaying linearly to 0 over the run
MUON_MOMENTUM = (0.85, 0.95)  # Muon Nesterov momentum: warms up from the first value to the second
MUON_MOMENTUM_WARMUP_STEPS = 300  # optimizer steps of that warmup
MUON_BETA2 = 0.95  # NorMuon second-moment decay
MUON_NS_STEPS = 5  # orthogonalisation iterations (Polar Express)

# Schedule (fractions of the time budget)
WARMUP_RATIO = 0.0  # learning-rate warmup
WARMDOWN_RATIO = 0.5  # final stretch where the learning rate decays linearly
FINAL_LR_FRAC = 0.0  # learning rate at the end, as a fraction of the peak

SEED = 42  # weight initialisation

# The tiny profile runs on a CPU in seconds: a model and batch sized for that. Overrides only.
if PROFILE == "tiny":
    DEPTH = 2
    ASPECT_RATIO = 64
    HEAD_DIM = 32
    SHORT_WINDOW = 128
    TOTAL_BATCH_SIZE = 4096
    DEVICE_BATCH_SIZE = 16
    EMBEDDING_LR = 0.3
    UNEMBEDDING_LR = 0.01
    MATRIX_LR = 0.03
    MUON_MOMENTUM_WARMUP_STEPS = 30
    WARMDOWN_RATIO = 0.4

# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


@dataclass
class GPTConfig:
    sequence_len: int
    vocab_size: int
    n_layer: int
    n_head: int
    n_embd: int
    window_pattern: str
    short_window: int


def rms_norm(x):
    return F.rms_norm(x, (x.size(-1),))


def has_value_embedding(layer_idx, n_layer):
    """Value embeddings on every other layer, always including the last."""
    return layer_idx % 2 == (n_layer - 1) % 2


def rotary_tables(seq_len, head_dim, base):
    """cos and sin of the rotation angles, shaped (1, T, 1, head_dim/2) to broadcast over (B, T, H, D/2)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]


def rotate(x, cos, sin):
    """Rotate pairs (x[i], x[i + D/2]) of every head by position-dependent angles."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


def sliding_window_mask(seq_len, window, device):
    """Boolean (T, T) mask, True where a query may attend: causal and at most `window` tokens back."""
    pos = torch.arange(seq_len, device=device)
    distance = pos[:, None] - pos[None, :]
    return (distance >= 0) & (distance < window)


def flex_block_mask(seq_len, window, device):
    """The same mask as a FlexAttention BlockMask, which lets the kernel skip fully masked blocks."""
    from torch.nn.attention.flex_attention import create_block_mask

    def in_window(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx < window)

    return create_block_mask(in_window, None, None, seq_len, seq_len, device=device)


def attention(q, k, v, window, scale, masks):
    """Causal attention of (B, H, T, D) tensors over the last `window` tokens. Full-context layers use
    SDPA's causal kernel (flash attention on a GPU); sliding windows use FlexAttention when a block mask
    was prepared (CUDA), else SDPA with a boolean mask (CPU)."""
    seq_len = q.size(-2)
    if window >= seq_len:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    mask = masks[window]
    if isinstance(mask, torch.Tensor):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    from torch.nn.attention.flex_attention import flex_attention

    return flex_attention(q, k, v, block_mask=mask, scale=scale)


class CausalSelfAttention(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.c_q = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.c_k = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.c_v = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.ve_gate_channels = min(32, config.n_embd)
        self.ve_gate = (
            nn.Linear(self.ve_gate_channels, self.n_head, bias=False)
            if has_value_embedding(layer_idx, config.n_layer)
            else None
        )

    def forward(self, x, ve, rotary, window, masks):
        B, T, C = x.shape
        q = self.c_q(x).view(B, T, self.n_head, self.head_dim)
        k = self.c_k(x).view(B, T, self.n_head, self.head_dim)
        v = self.c_v(x).view(B, T, self.n_head, self.head_dim)
        # The attention kernel runs in the matmul dtype (bf16 under autocast): the fp32 value embeddings
        # and the norms would otherwise promote q, k or v to fp32, which the flash kernels do not take.
        dtype = q.dtype
        if ve is not None:  # mix the value embedding of each token into v, gated per head
            gate = 2 * torch.sigmoid(self.ve_gate(x[..., : self.ve_gate_channels]))
            v = v + gate.unsqueeze(-1) * ve.view(B, T, self.n_head, self.head_dim)
        cos, sin = rotary
        if QK_NORM_BEFORE_ROPE:
            q, k = rotate(rms_norm(q), cos, sin), rotate(rms_norm(k), cos, sin)
        else:
            q, k = rms_norm(rotate(q, cos, sin)), rms_norm(rotate(k, cos, sin))
        q, k, v = (t.to(dtype).transpose(1, 2) for t in (q, k, v))
        y = attention(q, k, v, window, Q_SCALE / math.sqrt(self.head_dim), masks)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.attn = CausalSelfAttention(config, layer_idx)
        self.mlp = MLP(config)

    def forward(self, x, ve, rotary, window, masks):
        x = x + self.attn(rms_norm(x), ve, rotary, window, masks)
        return x + self.mlp(rms_norm(x))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList([Block(config, i) for i in range(config.n_layer)])
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # x_i = resid_lambdas[i] * x_i + x0_lambdas[i] * x_0 before every block
        self.resid_lambdas = nn.Parameter(torch.ones(config.n_layer))
        self.x0_lambdas = nn.Parameter(torch.full((config.n_layer,), 0.1))
        self.value_embeds = nn.ModuleDict(
            {
                str(i): nn.Embedding(config.vocab_size, config.n_embd)
                for i in range(config.n_layer)
                if has_value_embedding(i, config.n_layer)
            }
        )
        cos, sin = rotary_tables(config.sequence_len, config.n_embd // config.n_head, ROPE_BASE)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.windows = self.layer_windows(config)
        self.masks = {}

    @staticmethod
    def layer_windows(config):
        spans = {"L": config.sequence_len, "S": min(config.short_window, config.sequence_len)}
        pattern = config.window_pattern.upper()
        if not pattern or set(pattern) - set(spans):
            raise ValueError(f"WINDOW_PATTERN must be made of S and L, got {config.window_pattern!r}")
        windows = [spans[pattern[i % len(pattern)]] for i in range(config.n_layer)]
        windows[-1] = config.sequence_len
        return windows

    def prepare_attention(self, device, use_flex):
        """Build the sliding-window masks once, outside any compiled region."""
        T = self.config.sequence_len
        for window in set(self.windows) - {T}:
            self.masks[window] = (
                flex_block_mask(T, window, device) if use_flex else sliding_window_mask(T, window, device)
            )

    @torch.no_grad()
    def init_weights(self):
        bound = math.sqrt(3) / math.sqrt(self.config.n_embd)  # uniform with std 1/sqrt(width)
        nn.init.normal_(self.wte.weight, std=1.0)
        nn.init.normal_(self.lm_head.weight, std=0.001)  # near-uniform predictions at step 0
        for block in self.blocks:
            for linear in (block.attn.c_q, block.attn.c_k, block.attn.c_v, block.mlp.c_fc):
                nn.init.uniform_(linear.weight, -bound, bound)
            nn.init.zeros_(block.attn.c_proj.weight)  # each block starts as the identity
            nn.init.zeros_(block.mlp.c_proj.weight)
            if block.attn.ve_gate is not None:
                nn.init.zeros_(block.attn.ve_gate.weight)
        for embedding in self.value_embeds.values():
            nn.init.uniform_(embedding.weight, -bound, bound)
        self.resid_lambdas.fill_(1.0)
        self.x0_lambdas.fill_(0.1)

    def forward(self, idx, targets=None, reduction="mean"):
        T = idx.size(1)
        rotary = (self.cos[:, :T], self.sin[:, :T])
        x = rms_norm(self.wte(idx))
        x0 = x
        for i, block in enumerate(self.blocks):
            x = self.resid_lambdas[i] * x + self.x0_lambdas[i] * x0
            ve = self.value_embeds[str(i)](idx) if str(i) in self.value_embeds else None
            x = block(x, ve, rotary, self.windows[i], self.masks)
        x = rms_norm(x)
        logits = self.lm_head(x).float()
        logits = SOFTCAP * torch.tanh(logits / SOFTCAP)
        if targets is None:
            return logits
        return F.cross_entropy(
            logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1, reduction=reduction
        )

    def flops_per_token(self):
        """Training FLOPs per token (forward + backward): 6 per weight of every matmul, plus attention."""
        embeddings = self.wte.weight.numel() + sum(e.weight.numel() for e in self.value_embeds.values())
        scalars = self.resid_lambdas.numel() + self.x0_lambdas.numel()
        matmul_params = sum(p.numel() for p in self.parameters()) - embeddings - scalars
        head_dim = self.config.n_embd // self.config.n_head
        attn = sum(12 * self.config.n_head * head_dim * w for w in self.windows)
        return 6 * matmul_params + attn

    def param_groups(self):
        """Muon for the matrices inside the blocks (grouped by shape, so each group updates as one
        stacked tensor); AdamW for embeddings, lm_head and the per-layer scalars."""
        lr_scale = (self.config.n_embd / 768) ** -0.5  # AdamW rates were tuned at width 768
        adam = dict(kind="adamw", betas=ADAM_BETAS, eps=1e-10, weight_decay=0.0)
        groups = [
            dict(adam, params=[self.lm_head.weight], lr=UNEMBEDDING_LR * lr_scale),
            dict(adam, params=[self.wte.weight], lr=EMBEDDING_LR * lr_scale),
            dict(adam, params=list(self.value_embeds.parameters()), lr=EMBEDDING_LR * lr_scale),
            dict(adam, params=[self.resid_lambdas], lr=SCALAR_LR * 0.01),
            dict(adam, params=[self.x0_lambdas], lr=SCALAR_LR, betas=(0.96, 0.95)),
        ]
        matrices = list(self.blocks.parameters())
        for shape in sorted({p.shape for p in matrices}):
            same = [p for p in matrices if p.shape == shape]
            groups.append(dict(kind="muon", params=same, lr=MATRIX_LR, weight_decay=WEIGHT_DECAY))
        assert sum(len(g["params"]) for g in groups) == len(list(self.parameters()))
        return [g for g in groups if g["params"]]


# ---------------------------------------------------------------------------
# Optimizer: Muon (orthogonalised momentum, NorMuon scaling) for matrices, AdamW for the rest
# ---------------------------------------------------------------------------

# Polar Express coefficients (Amsel et al. 2025, arXiv:2505.16932): each step maps every singular
# value s to a*s + b*s^3 + c*s^5, pushing all of them towards 1 faster than a fixed quintic.
POLAR_EXPRESS = [
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
]


def orthogonalize(G, steps, dtype):
    """Approximately replace G = U S V^T by U V^T, for a stack of matrices (..., m, n)."""
    X = G.to(dtype)
    X = X / (X.norm(dim=(-2, -1), keepdim=True) * 1.02 + 1e-6)  # all singular values below 1
    wide = X.size(-2) <= X.size(-1)
    if not wide:  # iterate on the smaller Gram matrix
        X = X.mT
    for i in range(steps):
        a, b, c = POLAR_EXPRESS[min(i, len(POLAR_EXPRESS) - 1)]
        A = X @ X.mT
        X = a * X + (b * A + c * (A @ A)) @ X
    return X if wide else X.mT


def muon_update(
    params, grads, momentum_buf, second_moment, momentum, lr, weight_decay, beta2, ns_steps, ortho_dtype
):
    """One Muon step for a stack of same-shaped matrices. Scalars arrive as 0-d tensors so that a compiled
    version does not recompile when the schedule changes them."""
    momentum_buf.lerp_(grads, 1 - momentum)
    update = grads.lerp(momentum_buf, momentum)  # Nesterov
    update = orthogonalize(update, ns_steps, ortho_dtype).float()
    # NorMuon: divide each row (or column, for wide matrices) by the running RMS of its updates, then
    # rescale so the update keeps the overall norm the orthogonalisation gave it.
    reduce_dim = -1 if params.size(-2) >= params.size(-1) else -2
    row_power = update.square().mean(dim=reduce_dim, keepdim=True)
    second_moment.lerp_(row_power, 1 - beta2)
    scaled = update * second_moment.clamp_min(1e-10).rsqrt()
    scaled = scaled * (
        update.norm(dim=(-2, -1), keepdim=True) / scaled.norm(dim=(-2, -1), keepdim=True).clamp_min(1e-10)
    )
    lr = lr * max(1.0, params.size(-2) / params.size(-1)) ** 0.5
    # Cautious weight decay: shrink only the weights the update is also pushing towards zero.
    decay = (scaled * params >= 0).to(params.dtype)
    params.sub_(lr * scaled.to(params.dtype) + lr * weight_decay * params * decay)


def adamw_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay):
    param.mul_(1 - lr * weight_decay)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.lerp_(grad.square(), 1 - beta2)
    denom = (exp_avg_sq / (1 - beta2**step)).sqrt() + eps
    param.sub_(lr / (1 - beta1**step) * exp_avg / denom)


class MuonAdamW(torch.optim.Optimizer):
    """Groups with kind "muon" step with muon_update on stacked matrices, kind "adamw" with adamw_update."""

    def __init__(self, groups, compile_steps):
        super().__init__(groups, defaults={})
        for group in self.param_groups:
            group["initial_lr"] = group["lr"]
        self.muon_momentum = MUON_MOMENTUM[0]
        self.ortho_dtype = torch.bfloat16 if compile_steps else torch.float32
        self._muon = (
            torch.compile(muon_update, dynamic=False, fullgraph=True) if compile_steps else muon_update
        )
        self._adamw = (
            torch.compile(adamw_update, dynamic=False, fullgraph=True) if compile_steps else adamw_update
        )

    @staticmethod
    def _scalar(value):
        return torch.tensor(float(value), dtype=torch.float32)

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            if group["kind"] == "muon":
                self._step_muon(group)
            else:
                self._step_adamw(group)

    def _step_adamw(self, group):
        beta1, beta2 = group["betas"]
        scalars = [self._scalar(v) for v in (group["lr"], beta1, beta2, group["eps"], group["weight_decay"])]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            self._adamw(
                p, p.grad, state["exp_avg"], state["exp_avg_sq"], self._scalar(state["step"]), *scalars
            )

    def _step_muon(self, group):
        params = group["params"]
        state = self.state[params[0]]
        stacked = torch.stack(params)
        if not state:
            state["momentum"] = torch.zeros_like(stacked)
            rows, cols = stacked.shape[-2:]
            state["second_moment"] = stacked.new_zeros(
                (len(params), rows, 1) if rows >= cols else (len(params), 1, cols)
            )
        grads = torch.stack([p.grad for p in params])
        scalars = [
            self._scalar(v) for v in (self.muon_momentum, group["lr"], group["weight_decay"], MUON_BETA2)
        ]
        self._muon(
            stacked,
            grads,
            state["momentum"],
            state["second_moment"],
            *scalars,
            MUON_NS_STEPS,
            self.ortho_dtype,
        )
        torch._foreach_copy_(params, list(stacked.unbind(0)))


# ---------------------------------------------------------------------------
# Schedules (progress = elapsed training time / TIME_BUDGET)
# ---------------------------------------------------------------------------


def lr_multiplier(progress):
    if progress < WARMUP_RATIO:
        return progress / WARMUP_RATIO
    if progress < 1.0 - WARMDOWN_RATIO:
        return 1.0
    left = (1.0 - progress) / WARMDOWN_RATIO
    return left + (1.0 - left) * FINAL_LR_FRAC


def muon_momentum(step):
    start, end = MUON_MOMENTUM
    return start + (end - start) * min(step / max(MUON_MOMENTUM_WARMUP_STEPS, 1), 1.0)


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def pick_device():
    """The accelerator torch finds (CUDA_VISIBLE_DEVICES decides which GPU), else the CPU; on a GPU slot (the
    runner sets AUTORESEARCH_DEVICE=cuda) without one, fail at once (a machine fault) rather than train the
    GPU profile on the CPU until the timeout."""
    if torch.accelerator.is_available():
        return torch.accelerator.current_accelerator()
    if os.environ.get("AUTORESEARCH_DEVICE") == "cuda":
        fail(
            "this is a GPU slot but torch finds no CUDA device "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}; run `swarm doctor`)"
        )
    return torch.device("cpu")


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        model = next(
            (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), ""
        )
        return f"cpu ({model or platform.machine()})"
    return device.type


def _cpuinfo():
    try:
        with open("/proc/cpuinfo") as f:
            return f.readlines()
    except OSError:
        return []


def compile_warmup(model, run_model, optimizer, grad_accum, autocast, device, steps=2):
    """Compile the model's forward and backward and the optimizer's steps on dummy batches, then put the
    weights and the optimizer back as they were: the compile happens before the training window opens (the
    runner hands out training data only then), and trains nothing."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # laid out as the dataloader's batches (contiguous halves of one tensor): a different stride would
    # compile again at the first real step, inside the window
    shape = (2, DEVICE_BATCH_SIZE, MAX_SEQ_LEN)
    pair = torch.randint(0, model.config.vocab_size, shape, generator=torch.Generator().manual_seed(0))
    x, y = pair.to(device)
    for _ in range(steps):
        for _ in range(grad_accum):
            with autocast:
                loss = run_model(x, y)
            (loss / grad_accum).backward()
        optimizer.step()
        model.zero_grad(set_to_none=True)
        loss.item()
    with torch.no_grad():
        model.load_state_dict(saved)
    optimizer.state.clear()


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def main():
    t_start = time.time()
    torch.manual_seed(SEED)
    device = pick_device()
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.set_float32_matmul_precision("high")
    # Set by the runner, never by an agent: the CPU mirror of the CUDA path (compiled, bf16 autocast on the
    # CPU), and a step limit for `swarm doctor --smoke`.
    compiled = on_cuda or os.environ.get("AUTORESEARCH_CUDA_MIRROR") == "1"
    smoke_steps = int(os.environ.get("AUTORESEARCH_SMOKE_STEPS") or 0)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if compiled else nullcontext()

    tokenizer = Tokenizer.from_directory()
    vocab_size = tokenizer.get_vocab_size()
    width = -(-DEPTH * ASPECT_RATIO // HEAD_DIM) * HEAD_DIM  # rounded up to whole heads
    config = GPTConfig(
        sequence_len=MAX_SEQ_LEN,
        vocab_size=vocab_size,
        n_layer=DEPTH,
        n_head=width // HEAD_DIM,
        n_embd=width,
        window_pattern=WINDOW_PATTERN,
        short_window=SHORT_WINDOW,
    )
    model = GPT(config).to(device)
    model.init_weights()
    model.prepare_attention(device, use_flex=on_cuda)
    num_params = sum(p.numel() for p in model.parameters())
    flops_per_token = model.flops_per_token()

    tokens_per_pass = DEVICE_BATCH_SIZE * MAX_SEQ_LEN
    if TOTAL_BATCH_SIZE % tokens_per_pass:
        fail(f"TOTAL_BATCH_SIZE {TOTAL_BATCH_SIZE} is not a multiple of DEVICE_BATCH_SIZE x MAX_SEQ_LEN")
    grad_accum = TOTAL_BATCH_SIZE // tokens_per_pass
    optimizer = MuonAdamW(model.param_groups(), compile_steps=compiled)
    run_model = torch.compile(model, dynamic=False) if compiled else model

    name = device_name(device)
    how = " (compiled, bf16 autocast)" if compiled else ""
    print(f"profile {PROFILE} on {name}{how}: {num_params / 1e6:.2f}M params, width {width}, depth {DEPTH}")
    print(
        f"time budget {TIME_BUDGET}s, {TOTAL_BATCH_SIZE} tokens per step = {grad_accum} x {tokens_per_pass}"
    )
    peak_flops = peak_bf16_flops(name) if on_cuda else None
    if on_cuda and peak_flops is None:
        print(f"no peak bf16 FLOP/s known for {name}: mfu_percent will read 0")
    startup_seconds = time.time() - t_start

    # Before the training window (swarm.runner.clock): trace the program to hand over (its tensors are the
    # model's, so it holds the trained weights at the end), then compile on dummy batches (after the trace,
    # so that the attention masks compiled against are the ones training uses).
    t_trace = time.time()
    model.prepare_attention(device, use_flex=False)  # FlexAttention exports but does not serialise
    program = trace_model(model, DEVICE_BATCH_SIZE)
    model.prepare_attention(device, use_flex=on_cuda)
    trace_seconds = time.time() - t_trace
    t_compile = time.time()
    if compiled:
        compile_warmup(model, run_model, optimizer, grad_accum, autocast, device)
    compile_seconds = time.time() - t_compile

    # The first batch opens the training window: from here on the runner's clock counts every second.
    train_loader = make_dataloader(tokenizer, DEVICE_BATCH_SIZE, MAX_SEQ_LEN, "train", device=device)
    x, y, epoch = next(train_loader)
    explode_at = 3 * math.log(vocab_size)  # three times the loss of a uniform guess
    training_time = 0.0
    smooth_loss = 0.0
    last_report = 0.0
    step = 0
    while True:
        t0 = time.time()
        for _ in range(grad_accum):
            with autocast:
                loss = run_model(x, y)
            (loss / grad_accum).backward()
            x, y, epoch = next(train_loader)
        progress = min(training_time / TIME_BUDGET, 1.0)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * lr_multiplier(progress)
            if group["kind"] == "muon":
                group["weight_decay"] = WEIGHT_DECAY * (1.0 - progress)
        optimizer.muon_momentum = muon_momentum(step)
        optimizer.step()
        model.zero_grad(set_to_none=True)
        train_loss = loss.item()  # waits for the step to finish, so the timing below is honest
        if not math.isfinite(train_loss) or train_loss > explode_at:
            fail(f"training loss {train_loss} at step {step} (NaN or exploding)")
        dt = time.time() - t0
        step += 1
        training_time = training_elapsed()
        if step == 1:  # from here on, the collector only costs time (the model and data are long-lived)
            gc.collect()
            gc.freeze()
            gc.disable()
        smooth_loss = 0.9 * smooth_loss + 0.1 * train_loss
        # a progress line every 5 s of training (every 1/20 of a shorter budget): the runner's early stop
        # compares these curves (swarm.runner.pruning)
        if (
            step <= 3
            or training_time - last_report >= min(5.0, TIME_BUDGET / 20)
            or training_time >= TIME_BUDGET
        ):
            last_report = training_time
            shown = smooth_loss / (1 - 0.9**step)
            print(
                f"step {step:05d} ({100 * progress:5.1f}%) loss {shown:.4f} lrm {lr_multiplier(progress):.2f} "
                f"dt {1000 * dt:.0f}ms tok/s {TOTAL_BATCH_SIZE / dt:,.0f} epoch {epoch}",
                flush=True,
            )
        # Stop before a step that would end past the budget: an honest run overshoots it only by how much
        # slower than the one before its last step was (the runner allows budget_tolerance).
        if training_time + dt >= TIME_BUDGET:
            break
        if smoke_steps and step >= smoke_steps:
            break

    # Hand the model over (committing its weights closes the window): the runner's evaluator measures
    # val_bpb from it, on data train.py never reads.
    training_time = training_elapsed()
    t_export = time.time()
    hand_over(program)
    t_end = time.time()
    export_seconds = trace_seconds + t_end - t_export
    print(f"startup {startup_seconds:.1f}s, compile {compile_seconds:.1f}s, export {export_seconds:.1f}s")

    mfu = 0.0
    if peak_flops and training_time:
        mfu = 100 * flops_per_token * TOTAL_BATCH_SIZE * step / training_time / peak_flops
    peak_vram_mb = torch.cuda.max_memory_allocated(device) / 1024**2 if on_cuda else 0.0
    summary = [
        ("training_seconds", f"{training_time:.1f}"),
        ("total_seconds", f"{t_end - t_start:.1f}"),
        ("startup_seconds", f"{startup_seconds:.1f}"),
        ("compile_seconds", f"{compile_seconds:.1f}"),
        ("peak_vram_mb", f"{peak_vram_mb:.1f}"),
        ("mfu_percent", f"{mfu:.2f}"),
        ("total_tokens_M", f"{step * TOTAL_BATCH_SIZE / 1e6:.1f}"),
        ("num_steps", f"{step}"),
        ("num_params_M", f"{num_params / 1e6:.1f}"),
        ("depth", f"{DEPTH}"),
        ("device", name),
        ("profile", PROFILE),
    ]
    print("---")
    for key, value in summary:
        print(f"{key + ':':<18}{value}")


if __name__ == "__main__":
    main()
