"""swarm.toml sections: defaults, overrides, and one clear error for a typo or a wrong type."""

from dataclasses import dataclass

import pytest

from swarm.config import load_section
from swarm.errors import SwarmError


@dataclass(frozen=True)
class Example:
    allowed_paths: tuple[str, ...] = ("train.py",)
    floor: dict[str, float] | None = None
    repeats: int = 2


def test_missing_file_gives_defaults(tmp_path):
    assert load_section(tmp_path, "example", Example) == Example()


def test_values_override_defaults(tmp_path):
    (tmp_path / "swarm.toml").write_text(
        '[example]\nallowed_paths = ["train.py", "notes.md"]\nfloor = {h100 = 3e-4}\n'
    )
    got = load_section(tmp_path, "example", Example)
    assert got.allowed_paths == ("train.py", "notes.md")
    assert got.floor == {"h100": 3e-4}
    assert got.repeats == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("[example]\nrepeat = 3\n", "unknown key 'repeat'"),
        ("[example]\nrepeats = 'x'\n", "is not of type int"),
    ],
)
def test_bad_values_are_one_clear_error(tmp_path, text, message):
    (tmp_path / "swarm.toml").write_text(text)
    with pytest.raises(SwarmError, match=message):
        load_section(tmp_path, "example", Example)
