"""The discrete-event model of the line (SimPy). No I/O: it talks to the world only through observers."""

from simline.sim.line import Line, LineStats

__all__ = ["Line", "LineStats"]
