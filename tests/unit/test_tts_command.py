"""The command-line voices: text that looks like an option is spoken, never obeyed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bridge.speech.tts_command import COMMANDS, CommandSynthesizer, wav_samples


@pytest.mark.parametrize(("program", "marker"), [("espeak-ng", "--"), ("flite", "-t")])
def test_the_text_is_the_last_argument_after_its_marker(program: str, marker: str) -> None:
    command = COMMANDS[program]("", "-w /etc/passwd")
    assert command[-2:] == [marker, "-w /etc/passwd"]


@pytest.mark.parametrize(("program", "option"), [("espeak-ng", "-w"), ("flite", "-o")])
def test_text_that_looks_like_an_output_option_is_spoken(program: str, option: str, tmp_path: Path) -> None:
    if shutil.which(program) is None:  # scripts/test installs both; a missing one must fail, not skip
        raise RuntimeError(f"{program} not found: install Debian's {program} (scripts/test does this)")
    hijack = tmp_path / "written.wav"
    audio = wav_samples(CommandSynthesizer(program)._run(f"{option}{hijack}"))
    assert len(audio) > 1000 and not hijack.exists()
