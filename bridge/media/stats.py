"""Fixed-size sample windows for timing statistics that cost nothing on the media path."""

from __future__ import annotations

from array import array


class SampleWindow:
    """Keeps the most recent `size` float samples in a ring; percentiles are computed on demand."""

    def __init__(self, size: int = 4096) -> None:
        self._values = array("d", bytes(8 * size))
        self._size = size
        self._count = 0

    def add(self, value: float) -> None:
        self._values[self._count % self._size] = value
        self._count += 1

    def __len__(self) -> int:
        return min(self._count, self._size)

    def values(self) -> list[float]:
        return list(self._values[: len(self)])

    def percentile(self, fraction: float) -> float:
        values = sorted(self.values())
        if not values:
            return 0.0
        index = min(len(values) - 1, max(0, round(fraction * (len(values) - 1))))
        return values[index]
