"""Background tasks with an owner: each is kept referenced until it is done (the event loop
holds only a weak reference to a running task, so an unreferenced one can vanish mid-run), and
the owner can cancel them or wait for them at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class BackgroundTasks(Generic[T]):
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[T]] = set()

    def start(self, work: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __iter__(self) -> Iterator[asyncio.Task[T]]:
        return iter(list(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def wait(self) -> None:
        """Until every task running now has finished (their errors are theirs: not raised here)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
