"""The header: run tag, age, agents alive, experiments and rate, GPUs busy, and the best per device class."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from swarm.tui.cells import agent_text, duration, short_device, signed, value
from swarm.tui.model import Header


def header_text(header: Header) -> Text:
    age = duration(header.now - header.started_at) if header.started_at else "-"
    # liveness is known only when the run's tmux server could be asked
    agents = f"{header.agents}" if header.alive is None else f"{header.alive}/{header.agents}"
    busy = header.busy_slots / header.slots if header.slots else 0.0
    line = Text.assemble(
        ("autoresearch-swarm", "bold"),
        "  swarm ",
        agent_text(header.tag or "-", 32, "bold cyan"),
        f"  up {age}",
        "  agents ",
        (agents, "bold"),
        "" if header.alive is None else " alive",
        "  experiments ",
        (f"{header.experiments:,}", "bold"),
        f" ({header.last_hour}/h)",
        "  GPUs busy ",
        (f"{header.busy_slots}/{header.slots} ({busy:.0%})", "bold"),
    )
    for queue in header.queues:
        line.append(f"\n{queue}", style="dim")
    if header.pruned:
        line.append(f"  pruned {header.pruned} (saved {duration(header.saved_seconds)})")
    if header.unsealed:
        line.append("  UNSEALED", style="bold red")  # spawned --unsealed: no result was sandboxed
    if header.forged:
        line.append(
            f"\n{header.forged} board line(s) not written by a runner ignored: see swarm doctor",
            style="bold red",
        )
    if not header.bests:
        line.append("\nno confirmed best yet", style="dim")
    for best in header.bests:
        device, profile = best.group
        sigma = f" ±{best.sigma:.6f}" if best.sigma is not None else ""
        line.append("\n")
        line.append_text(agent_text(f"{short_device(device)} · {profile}", 28, "bold"))
        line.append("  best ")
        line.append(value(best.mean), style="bold green")
        line.append(f"{sigma} n={best.n}  ")
        line.append(
            "✓ verified" if best.verified else "unverified", style="green" if best.verified else "yellow"
        )
        if best.baseline is not None:
            line.append(f"  {signed(best.mean - best.baseline)} vs baseline {value(best.baseline)}")
        line.append("  ")
        line.append_text(agent_text(f"{best.id} {best.agent}", 24, "dim"))
    return line


class RunHeader(Static):
    DEFAULT_CSS = """
    RunHeader {
        height: auto;
        max-height: 5;
        padding: 0 1;
        background: $panel;
    }
    """

    def show(self, header: Header) -> None:
        self.update(header_text(header))
