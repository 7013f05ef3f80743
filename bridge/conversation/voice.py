"""The agent's side of the call: the one owner of the caller's playout queue.

Everything that puts audio in front of the caller or takes it away goes through here: replies
(started through the call's `ReplySlot`), fixed phrases from the shared phrase cache (the
greeting, a re-prompt, the last words), and the barge-in that cuts them off within a frame.
So "is the agent speaking" has one answer, asked of one place, on every frame.
"""

from __future__ import annotations

import asyncio

from bridge.conversation.agent import Agent
from bridge.conversation.deadlines import stalled_after
from bridge.conversation.reply import Reply
from bridge.conversation.reply_slot import ReplySlot
from bridge.conversation.turns import Turn
from bridge.media.playout import PlayoutQueue


class AgentVoice:
    """The one owner of the caller's playout queue: with every word the agent says put there or
    taken away here, barge-in and "is the agent speaking" are decided in one place."""

    def __init__(self, agent: Agent, rate: int, output: PlayoutQueue, replies: ReplySlot) -> None:
        self._agent = agent
        self._tts_seconds = agent.settings.tts_timeout_seconds
        self._rate = rate
        self._output = output
        self._replies = replies

    @property
    def speaking(self) -> bool:
        """Audio is queued for the caller, or a reply is cleared to play."""
        return len(self._output) > 0 or self._replies.released()

    @property
    def audible(self) -> bool:
        """The caller can hear the agent: audio is queued, or a reply in flight has begun playing.
        Unlike `speaking`, not a reply that is cleared to play but has no audio yet."""
        reply = self._replies.reply
        return len(self._output) > 0 or (reply is not None and reply.released.is_set() and reply.started_output)

    @property
    def quiet(self) -> bool:
        """No reply in flight and nothing left to play."""
        return self._replies.reply is None and len(self._output) == 0

    def new_reply(self, turn: Turn | None = None) -> Reply:
        return Reply(self._agent.speaker, self._rate, self._output, turn, self._tts_seconds)

    def say(self, text: str) -> None:
        """A fixed phrase (the greeting, a re-prompt) as a reply of its own, played at once."""
        reply = self.new_reply()
        reply.released.set()
        self._replies.start(reply, self._say(reply, text))

    async def say_last(self, text: str) -> None:
        """The call's last words, queued as they are (nothing follows them); returns once played."""
        async with stalled_after(self._tts_seconds, "speech synthesis"):
            audio = await self._agent.phrase(text, self._rate)
        self._output.put(audio)
        self._output.end_segment()
        await self._output.wait_for_playout()

    def silence(self) -> int:
        """Stop the reply in flight and drop what is queued; returns the frames dropped."""
        self._replies.cancel()
        return self._output.clear()

    def interrupt(self) -> tuple[Reply | None, str, int]:
        """The caller talks over the agent: the cut reply, what of it they heard, frames dropped."""
        played = self._output.frames_played_total
        dropped = self._output.clear()
        reply, heard = self._replies.interrupt(played)
        return reply, heard, dropped

    async def wait_for_playout(self) -> None:
        await self._output.wait_for_playout()

    async def _say(self, reply: Reply, text: str) -> None:
        playing = asyncio.ensure_future(reply.play())
        try:
            async with stalled_after(self._tts_seconds, "speech synthesis"):
                audio = await self._agent.phrase(text, self._rate)
            reply.add(text, audio)
            reply.close()
            await playing
            await self._output.wait_for_playout()
        finally:
            playing.cancel()
