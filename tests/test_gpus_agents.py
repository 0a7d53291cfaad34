"""GPU detection and slot selection, agent adapters and kind mixes (no processes started)."""

from __future__ import annotations

import os

import pytest

from swarm.agents.kinds import BUILT_IN, ClaudeCode, Codex, agent_commands, assign_kinds
from swarm.errors import SwarmError
from swarm.orchestration.gpus import detect_gpus, parse_nvidia_smi, select_slots

NVIDIA_SMI = """\
0, NVIDIA H100 80GB HBM3, 81559, GPU-0a1b
1, NVIDIA H100 80GB HBM3, 81559, GPU-2c3d
2, NVIDIA H200, 143771, GPU-4e5f
"""


def test_nvidia_smi_output_parses_in_index_order():
    gpus = parse_nvidia_smi("2, NVIDIA H200, 143771, GPU-4e5f\n" + NVIDIA_SMI.splitlines()[0] + "\n")
    assert [(g.index, g.name, g.memory_mib, g.uuid) for g in gpus] == [
        (0, "NVIDIA H100 80GB HBM3", 81559, "GPU-0a1b"),
        (2, "NVIDIA H200", 143771, "GPU-4e5f"),
    ]


def test_fake_gpus_replace_detection(monkeypatch):
    monkeypatch.setenv("SWARM_FAKE_GPUS", "3:NVIDIA H100 80GB HBM3")
    assert [(g.index, g.name) for g in detect_gpus()] == [(i, "NVIDIA H100 80GB HBM3") for i in range(3)]


def test_slots_from_a_count_a_list_or_cpu_workers():
    gpus = parse_nvidia_smi(NVIDIA_SMI)
    assert [(s.agent, s.queue, s.device) for s in select_slots("2", None, gpus)] == [
        ("gpu0", "0", "NVIDIA H100 80GB HBM3"),
        ("gpu1", "1", "NVIDIA H100 80GB HBM3"),
    ]
    assert [s.agent for s in select_slots("2,0", None, gpus)] == ["gpu2", "gpu0"]
    assert [s.agent for s in select_slots("1,", None, gpus)] == ["gpu1"]
    assert [s.agent for s in select_slots(None, None, gpus)] == ["gpu0", "gpu1", "gpu2"]
    assert [(s.agent, s.queue, s.device) for s in select_slots(None, 2, [])] == [
        ("cpu0", "cpu0", "cpu"),
        ("cpu1", "cpu1", "cpu"),
    ]


@pytest.mark.parametrize(
    "gpus_arg, cpu, message",
    [
        ("0", None, "at least one GPU"),
        ("4", None, "this machine has 3 GPU"),
        ("0,0", None, "GPU 0 named twice"),
        ("1,5", None, "no GPU 5"),
        ("x", None, "expected a count"),
        (None, 0, "at least one CPU worker"),
        ("2", 2, "not both"),
    ],
)
def test_bad_slot_requests_are_clear_errors(gpus_arg, cpu, message):
    with pytest.raises(SwarmError, match=message):
        select_slots(gpus_arg, cpu, parse_nvidia_smi(NVIDIA_SMI))


def test_no_gpus_without_cpu_flag_says_what_to_do():
    with pytest.raises(SwarmError, match="use --cpu N"):
        select_slots(None, None, [])


def test_claude_and_codex_command_lines():
    claude = ClaudeCode().argv(prompt="do it", agent="gpu1", gpu="1", worktree="/w")
    assert claude == [
        "claude", "-p", "do it", "--dangerously-skip-permissions", "--output-format", "stream-json", "--verbose"
    ]  # fmt: skip
    assert ClaudeCode(output_format="json").argv(prompt="p", agent="a", gpu="0", worktree="/w")[-1] == "json"
    assert ClaudeCode().environment() == ({"IS_SANDBOX": "1"} if os.geteuid() == 0 else {})
    codex = Codex().argv(prompt="do it", agent="gpu1", gpu="1", worktree="/w")
    assert codex == [
        "codex", "exec", "--dangerously-bypass-approvals-and-sandbox", "-c", "allow_login_shell=false", "--json", "do it"
    ]  # fmt: skip
    sweep = BUILT_IN["sweep"].argv(prompt="p", agent="cpu0", gpu="cpu0", worktree="/w", python="/py")
    assert sweep == ["/py", "-P", "-m", "swarm", "agent", "sweep"]


def test_custom_kinds_from_swarm_toml_and_mixes(tmp_path):
    (tmp_path / "swarm.toml").write_text(
        '[agents]\ndefault = "bot"\n[agents.commands]\nbot = ["mybot", "--name", "{agent}-{gpu}", "{prompt}"]\n'
    )
    settings, commands = agent_commands(tmp_path)
    assert settings.default == "bot"
    assert commands["bot"].argv(prompt="go", agent="gpu3", gpu="3", worktree="/w") == [
        "mybot",
        "--name",
        "gpu3-3",
        "go",
    ]
    with pytest.raises(SwarmError, match="needs `mybot`, which is not on PATH"):
        commands["bot"].check_installed()
    assert assign_kinds("claude:2,codex:2", 4, commands) == ["claude", "claude", "codex", "codex"]
    assert assign_kinds("sweep:1,bot", 3, commands) == ["sweep", "bot", "bot"]
    assert assign_kinds("codex", 2, commands) == ["codex", "codex"]
    for spec, message in [
        ("claude:4,codex:4", "names 8 agent"),
        ("claude,codex", "counts to all kinds but one"),
        ("claude:0,codex", "positive count"),
        ("gemini", "unknown agent kind 'gemini'"),
    ]:
        with pytest.raises(SwarmError, match=message):
            assign_kinds(spec, 4, commands)
