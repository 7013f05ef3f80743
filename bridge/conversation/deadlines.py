"""How long a call waits for a model before it gives up on it.

A model that raises is easy: the error reaches the call and it apologises. A model that hangs
(a wedged thread, a server that never answers) raises nothing, and the caller would hear
silence until they gave up. Every wait for a model in a call therefore has a deadline, and
running past it is an error like any other: the call apologises and follows
`conversation.on_error` while the other calls go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


class ModelStalled(TimeoutError):
    """A model gave no result within its deadline."""


@contextlib.asynccontextmanager
async def stalled_after(seconds: float, what: str) -> AsyncIterator[None]:
    """Raise ModelStalled (naming `what`) if the block takes longer than `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as error:
        if isinstance(error, ModelStalled):
            raise
        raise ModelStalled(f"{what} gave nothing for {seconds:g} s") from None


async def next_within(stream: AsyncIterator[T], seconds: float, what: str) -> T:
    """The stream's next item, or StopAsyncIteration at its end; ModelStalled past `seconds`."""
    async with stalled_after(seconds, what):
        return await anext(stream)
