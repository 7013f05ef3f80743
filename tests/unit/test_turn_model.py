"""Smart Turn v3.2 itself (the real ONNX file `bridge models` fetches): loads, judges, sees 8 s."""

from __future__ import annotations

import numpy as np

from bridge.config.agent import TurnConfig
from bridge.conversation.turn_judge import verdict
from bridge.speech.turn_model import MODEL_SHA256, SmartTurnModel, packaged_smart_turn
from tests.support.audio import tone


def _model() -> SmartTurnModel:
    # No skip: CI runs `bridge models`, which fetches the file; a missing one fails here, loudly.
    return SmartTurnModel(packaged_smart_turn())


def _speechlike(seconds: float) -> np.ndarray:
    pcm = tone(220, seconds, 16000, amplitude=0.3)
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


def test_the_packaged_model_is_the_pinned_file_and_gives_a_probability() -> None:
    import hashlib

    path = packaged_smart_turn()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == MODEL_SHA256
    probability = _model().complete_probability(_speechlike(1.5))
    assert 0.0 <= probability <= 1.0


def test_only_the_last_eight_seconds_count() -> None:
    model = _model()
    tail = _speechlike(3.0)
    rng = np.random.default_rng(1)
    long = np.concatenate([rng.normal(0, 0.2, 16000 * 10).astype(np.float32), np.zeros(16000 * 5, np.float32), tail])
    assert abs(model.complete_probability(long) - model.complete_probability(long[-16000 * 8 :])) < 1e-6


def test_verdicts_from_the_thresholds() -> None:
    settings = TurnConfig(detector="smart_turn", complete_above=0.8, incomplete_below=0.3)
    assert verdict(0.9, settings) is True
    assert verdict(0.2, settings) is False
    assert verdict(0.5, settings) is None


def test_thresholds_out_of_order_are_a_config_error_naming_the_key() -> None:
    import pytest

    from bridge.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="turn"):
        parse_config({"turn": {"detector": "smart_turn", "complete_above": 0.4, "incomplete_below": 0.6}})


def test_a_missing_model_file_names_the_key() -> None:
    from pathlib import Path

    import pytest

    from bridge.conversation.loading import load_turn_model
    from bridge.models.errors import ModelFileError

    with pytest.raises(ModelFileError, match=r"turn\.model_path"):
        load_turn_model(TurnConfig(detector="smart_turn", model_path=Path("/nonexistent/smart-turn.onnx")))
