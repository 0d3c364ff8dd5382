"""Random streams: one seed per run, one independent numpy Generator per station and purpose.

A stream is named, e.g. ``("cut", "processing", "plate")``; its seed is derived from the run's seed, the
replication number and the CRC-32 of each name. So a baseline and an investment run share their streams
(common random numbers), and adding a station or a purpose does not shift any other stream.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["Streams"]


class Streams:
    """Factory of named random streams for one replication."""

    def __init__(self, seed: int, replication: int = 0) -> None:
        self.seed = seed
        self.replication = replication

    def generator(self, *names: str) -> np.random.Generator:
        """A new Generator for the stream named ``names``; the same names always give the same stream."""
        key = (self.replication, *(zlib.crc32(name.encode("utf-8")) for name in names))
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=key)))
