"""The one reply a call has in flight, the task saying it, and what a barge-in left unsaid.

A new reply (a speculative answer at a pause, a key press, a re-prompt) supersedes the last and
a barge-in cancels it, so a call never has two voices: replies start and stop only here. Every
reply runs under the same guard: a backend that raises ends the call through `on_failure`
instead of leaving the caller in silence, and `on_done` tells the call when its reply is over
(the caller's silence counts from then).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from bridge.background import BackgroundTasks
from bridge.conversation.reply import Reply


class ReplySlot:
    """Holds the call's one reply in flight, so that starting, superseding and cutting off a reply
    are single steps that can never leave two voices talking, or a failure unheard."""

    def __init__(
        self,
        tasks: BackgroundTasks[Any],
        on_failure: Callable[[Reply, Exception], None],
        on_done: Callable[[], None],
    ) -> None:
        self._tasks = tasks
        self._on_failure = on_failure
        self._on_done = on_done
        self.reply: Reply | None = None
        self._task: asyncio.Task[None] | None = None
        self._unheard: list[str] = []  # clauses of the last interrupted reply the caller did not hear

    def start(self, reply: Reply, work: Coroutine[Any, Any, None]) -> None:
        """`reply` is now the one in flight, said by `work`; the one before it is cancelled."""
        self.cancel()
        self.reply = reply
        self._task = self._tasks.start(self._guarded(reply, work))
        self._task.add_done_callback(lambda _: work.close())  # cancelled before it ever ran

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.reply = None
        self._task = None

    def released(self) -> bool:
        """A reply is in flight and cleared to play (not one prepared while the caller pauses)."""
        return self.reply is not None and self.reply.released.is_set()

    def interrupt(self, played_frame: int) -> tuple[Reply | None, str]:
        """Cancel the reply at the caller's playout position: it, and what of it they heard."""
        reply = self.reply
        heard = ""
        if reply is not None:
            heard, self._unheard = reply.heard_and_unheard(played_frame)
        self.cancel()
        return reply, heard

    @property
    def unheard(self) -> tuple[str, ...]:
        """What the caller did not hear of the last reply they interrupted (until resumed or forgotten)."""
        return tuple(self._unheard)

    def forget_unheard(self) -> None:
        """The caller's turn was real: what they talked over is not said after all."""
        self._unheard = []

    def resume_unheard(self, reply: Reply) -> list[str]:
        """A false interruption (noise, a cough): what the caller missed goes into `reply`, closed."""
        resumed, self._unheard = self._unheard, []
        for clause in resumed:
            reply.add(clause)
        reply.close()
        return resumed

    async def _guarded(self, reply: Reply, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - any backend may fail; the call must not go silent
            self._on_failure(reply, error)
        finally:
            if self.reply is reply:
                self.reply = None
                self._task = None
                self._on_done()
