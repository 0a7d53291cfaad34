"""swarm.toml sections: defaults, overrides, and one clear error for a typo or a wrong type."""

import subprocess
import sys
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


# ---------------------------------------------------------------------------------------------------------
# The whole file, before anything starts (swarm.orchestration.settings_check)

BAD_FILES = [
    ("[noise]\nsigma = 2\n", "[noise]: unknown key 'sigma' (did you mean sigmas?)"),
    ("[noise]\nsigmas = -1\n", "[noise]: sigmas = -1 must not be negative"),
    ("[noise]\nfloor = {tiny = -0.01}\n", "[noise]: floor = {'tiny': -0.01} must not be negative"),
    ('[runner]\ntimeout_s = "long"\n', "[runner]: timeout_s = 'long' is not of type"),
    ("[runner]\nmax_attempts = 1.5\n", "[runner]: max_attempts = 1.5 is not of type int"),
    ("[coordinator]\ntick_s = -2\n", "[coordinator]: tick_s = -2 must not be negative"),
    ("[coordinatr]\ntick_s = 2\n", "unknown section [coordinatr] (did you mean coordinator?)"),
    ("[bubblewrap]\nx = 1\n", "unknown section [bubblewrap] (known: agents, api,"),
    ('[optuna]\nsampler = "grid"\n', "[optuna]: sampler = 'grid'"),
    ("[pruning]\npatience = -1\n", "[pruning]: patience = -1 must not be negative"),
    ('[api]\nprovider = "openai-compatible"\n', "[api] model is required"),
    ("[agents]\nwritable = 3\n", "[agents]: writable = 3 is not of type"),
    ("[noise\n", "swarm.toml"),
]


@pytest.mark.parametrize("text, message", BAD_FILES)
def test_every_section_is_checked(tmp_path, text, message):
    from swarm.orchestration.settings_check import check_config

    (tmp_path / "swarm.toml").write_text(text)
    with pytest.raises(SwarmError) as caught:
        check_config(tmp_path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_good_file_and_signed_ranges_pass(tmp_path):
    from swarm.orchestration.settings_check import SECTIONS, check_config, settings_class

    (tmp_path / "swarm.toml").write_text(
        '[noise]\nsigmas = 3\nrule = "single"\n[runner]\nallowed_paths = ["train.py"]\n'
        "[optuna]\nranges = {ROPE_SHIFT = [-1.0, 1.0]}\n[coordinator]\ntick_s = 1\n"
    )
    check_config(tmp_path)
    # every section named here is a settings dataclass (ray's when ray is installed)
    for section in SECTIONS:
        cls = settings_class(section)
        assert cls is None or f"[{section}]" in (cls.__doc__ or ""), section


@pytest.mark.parametrize("command", [["doctor"], ["spawn", "--cpu", "1", "--kind", "sweep"], ["resume"]])
def test_spawn_resume_and_doctor_refuse_a_bad_file_before_anything_starts(
    swarm_shell, tmp_path, monkeypatch, command
):
    from tests.support.gitrepo import make_repo

    repo = make_repo(tmp_path / "repo")
    (repo / "swarm.toml").write_text("[runner]\ncuda_mirorr = true\n[noise]\nsigmas = -1\n")
    monkeypatch.chdir(repo)
    proc = subprocess.run(
        [sys.executable, "-m", "swarm", *command], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and proc.stdout == "", proc
    err = proc.stderr.strip()
    assert err.startswith("swarm: swarm.toml [runner]: unknown key 'cuda_mirorr'") and "\n" not in err, err
    assert not (repo / "board").exists() and not (tmp_path / "sock").exists()
