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
    with pytest.raises(ValueError, match="ulaw, alaw, g722, slin16"):
        codec_for("g729")


def test_g722_keeps_a_6khz_tone_that_8khz_audio_cannot_carry() -> None:
    from bridge.media.codecs import codec_for
    from tests.support.audio import dominant_frequency, tone

    g722 = codec_for("g722")
    assert (g722.payload_type, g722.sample_rate, g722.rtp_step, g722.pcm_frame_bytes) == (9, 16000, 160, 640)
    encode, decode = g722.encoder(), g722.decoder()
    pcm = tone(6000, 1.0, 16000, amplitude=0.3)
    frames = [pcm[i : i + 640] for i in range(0, len(pcm), 640)]
    payloads = [encode(frame) for frame in frames]
    assert {len(payload) for payload in payloads} == {160}  # 64 kbit/s
    decoded = b"".join(decode(payload) for payload in payloads)
    assert len(decoded) == len(pcm)
    assert abs(dominant_frequency(decoded[3200:], 16000) - 6000) < 50


def test_the_leg_follows_the_callers_codec_when_auto() -> None:
    from bridge.config import MediaConfig

    auto = MediaConfig()
    assert auto.codec_for_call("opus").name == "g722"
    assert auto.codec_for_call("g722").name == "g722"
    assert auto.codec_for_call("ulaw,alaw").name == "ulaw"
    assert auto.codec_for_call("").name == "ulaw"  # unknown: the safe narrowband leg
    assert MediaConfig(format="alaw").codec_for_call("opus").name == "alaw"
    assert auto.call_rates() == (8000, 16000)
