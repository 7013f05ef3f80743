import sys

import pytest

from bridge.media.codecs import codec_for, rms
from tests.support.audio import dominant_frequency, tone


@pytest.mark.parametrize(
    ("name", "payload_type", "frame_bytes"), [("ulaw", 0, 320), ("alaw", 8, 320), ("slin16", 118, 640)]
)
def test_frame_geometry(name: str, payload_type: int, frame_bytes: int) -> None:
    codec = codec_for(name)
    assert codec.payload_type == payload_type
    assert codec.pcm_frame_bytes == frame_bytes
    assert len(codec.silence()) == frame_bytes


@pytest.mark.parametrize("name", ["ulaw", "alaw", "slin16"])
def test_tone_survives_encode_decode(name: str) -> None:
    codec = codec_for(name)
    pcm = tone(440, 0.2, codec.sample_rate)
    decoded = codec.decode(codec.encode(pcm))
    assert len(decoded) == len(pcm)
    assert dominant_frequency(decoded, codec.sample_rate) == pytest.approx(440, abs=10)
    assert rms(decoded) == pytest.approx(rms(pcm), rel=0.05)


def test_g711_silence_bytes() -> None:
    assert set(codec_for("ulaw").encode(bytes(320))) == {0xFF}
    assert set(codec_for("alaw").encode(bytes(320))) == {0xD5}


def test_slin16_is_big_endian_on_the_wire() -> None:
    one_sample = (1000).to_bytes(2, sys.byteorder, signed=True)
    assert codec_for("slin16").encode(one_sample) == (1000).to_bytes(2, "big", signed=True)
    assert codec_for("slin16").decode(b"\x03\xe8") == one_sample


def test_unknown_codec_names_the_choices() -> None:
    with pytest.raises(ValueError, match="ulaw, alaw, slin16"):
        codec_for("g729")
