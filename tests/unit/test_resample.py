"""Rate conversion to the call's rate must not fold high frequencies back into the band."""

from __future__ import annotations

import warnings

import numpy as np

from bridge.media.resample import StreamResampler, resample_pcm16
from tests.support.audio import dominant_frequency, level, tone

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def test_in_band_audio_survives_22k_to_8k() -> None:
    out = resample_pcm16(tone(1000, 1.0, 22050), 22050, 8000)
    assert len(out) == 2 * 8000
    assert dominant_frequency(out, 8000) == 1000
    assert level(out) > 0.9 * level(tone(1000, 1.0, 8000))


def test_content_above_the_new_nyquist_is_removed_not_aliased() -> None:
    six_khz = tone(6000, 1.0, 22050)
    ours = resample_pcm16(six_khz, 22050, 8000)
    naive, _ = audioop.ratecv(six_khz, 2, 1, 22050, 8000, None)
    assert level(ours) < 0.01 * level(six_khz)  # below -40 dB
    assert level(naive) > 0.3 * level(six_khz)  # the naive converter aliases it to 2 kHz


def test_streaming_in_frames_matches_whole_conversion() -> None:
    audio = tone(440, 1.0, 8000)
    stream = StreamResampler(8000, 16000)
    pieces = b"".join(stream.process(audio[i : i + 320]) for i in range(0, len(audio), 320))
    pieces += stream.process(b"", last=True)
    assert abs(len(pieces) - 2 * len(audio)) <= 64
    whole = np.frombuffer(resample_pcm16(audio, 8000, 16000), dtype=np.int16)[4000:12000].astype(float)
    streamed = np.frombuffer(pieces, dtype=np.int16)[: whole.size + 8000][4000:12000].astype(float)
    assert dominant_frequency(pieces, 16000) == 440
    assert np.corrcoef(whole, streamed)[0, 1] > 0.99
