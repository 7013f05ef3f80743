"""A reply is held until released and knows what the caller heard."""

from __future__ import annotations

import asyncio

import pytest

from bridge.conversation.reply import Reply
from bridge.conversation.turns import Turn
from bridge.media.playout import PlayoutQueue
from bridge.speech.tts import Speaker
from tests.support.fakes import ToneSynthesizer

pytestmark = pytest.mark.virtual_time  # a sleep lasts until the synthesiser's thread has answered


async def test_audio_waits_for_release_then_plays_in_order() -> None:
    output = PlayoutQueue(320)
    turn = Turn(0, speech_start=0.0)
    reply = Reply(Speaker(ToneSynthesizer()), 8000, output, turn)
    playing = asyncio.ensure_future(reply.play())
    reply.add("one two three")
    reply.add("four five")
    reply.close()
    await asyncio.sleep(0.2)
    assert len(output) == 0 and "tts_first_audio" in turn.marks
    reply.released.set()
    await playing
    assert len(output) == (180 + 120) // 20
    output.pop()
    assert "first_frame_out" in turn.marks


async def test_heard_and_unheard_split_at_the_playout_position() -> None:
    output = PlayoutQueue(320)
    reply = Reply(Speaker(ToneSynthesizer()), 8000, output)
    reply.released.set()
    reply.add("one two three")
    reply.add("four five")
    reply.add("six", audio=bytes(320 * 2))
    reply.close()
    await reply.play()
    for _ in range(9 + 1):  # all of clause one, one frame into clause two
        output.pop()
    heard, unheard = reply.heard_and_unheard(output.frames_played_total)
    assert heard == "one two three"
    assert unheard == ["four five", "six"]


async def test_first_clause_pauses_generation_until_it_has_audio() -> None:
    reply = Reply(Speaker(ToneSynthesizer()), 8000, PlayoutQueue(320))
    assert reply.llm_go.is_set()
    reply.add("first clause")
    assert not reply.llm_go.is_set()
    reply.close()
    reply.released.set()
    await reply.play()
    assert reply.llm_go.is_set()
