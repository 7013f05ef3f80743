"""Label scoring over a token trie, on a fake llama context whose logits depend on what was evaluated."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from bridge.speech.llm_llama import _choose

VOCAB = 8


class FakeContext:
    def __init__(self, owner: FakeLlama) -> None:
        self.owner = owner

    def get_logits(self) -> ctypes.Array[ctypes.c_float]:
        row = self.owner.table.get(tuple(self.owner.evaluated), np.zeros(VOCAB))
        return (ctypes.c_float * VOCAB)(*row)


class FakeLlama:
    """Logits by the tokens evaluated after the prompt (empty tuple: right after the prompt)."""

    def __init__(self, table: dict[tuple[int, ...], list[float]]) -> None:
        self.table = {key: np.array(value, dtype=np.float64) for key, value in table.items()}
        self.evaluated: list[int] = []
        self._ctx = FakeContext(self)

    def n_vocab(self) -> int:
        return VOCAB

    def eval(self, tokens: list[int]) -> None:
        self.evaluated += tokens


def logits(**by_token: float) -> list[float]:
    row = [-30.0] * VOCAB
    for token, value in by_token.items():
        row[int(token[1:])] = value
    return row


def test_labels_with_their_own_first_token_are_scored_in_one_step() -> None:
    llama = FakeLlama({(): logits(t1=2.0, t2=1.0, t3=0.0, t7=9.0)})  # t7 is on no label's path: ignored
    scores = _choose(llama, {"sales": [1], "answer": [2], "goodbye": [3, 4]})
    assert scores.best == "sales" and llama.evaluated == []
    assert scores.confidence == pytest.approx(np.exp(2) / (np.exp(2) + np.exp(1) + 1), abs=1e-3)
    assert [label for label, _ in scores.ranked] == ["sales", "answer", "goodbye"]


def test_a_shared_first_token_is_decided_one_token_further() -> None:
    llama = FakeLlama({(): logits(t5=3.0, t2=0.0), (5,): logits(t1=0.0, t6=2.0)})
    scores = _choose(llama, {"else_a": [5, 1], "else_b": [5, 6], "answer": [2]})
    assert llama.evaluated == [5]
    assert scores.best == "else_b"
    shared = np.exp(3) / (np.exp(3) + 1)
    assert dict(scores.ranked)["else_b"] == pytest.approx(shared * np.exp(2) / (np.exp(2) + 1), abs=1e-3)
    assert sum(p for _, p in scores.ranked) == pytest.approx(1.0, abs=1e-3)
