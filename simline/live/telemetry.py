"""Live telemetry of a machine, consistent with its simulated state: power, condition, temperature, vibration.

The model keeps state and degradation; this module turns them into the signals a real machine would publish.
Temperature follows its state's target with a first-order lag; vibration rises with degradation while the
machine runs. A separate random stream adds sensor noise, so telemetry never disturbs the model's streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simline.events import MachineState
from simline.sim.machine import Machine

__all__ = ["MachineSignals", "Telemetry"]

_TEMPERATURE_C = {
    MachineState.PROCESSING: 62.0,
    MachineState.SETUP: 40.0,
    MachineState.IDLE: 34.0,
    MachineState.BLOCKED: 36.0,
    MachineState.STANDBY: 27.0,
    MachineState.DOWN: 30.0,
    MachineState.MAINTENANCE: 26.0,
    MachineState.OFF_SHIFT: 22.0,
}
_TAU_MIN = 12.0  # thermal time constant, simulated minutes


@dataclass(slots=True)
class MachineSignals:
    """One sample of a machine's signals."""

    state: MachineState
    power_kw: float
    condition: float  # degradation 0 (as new) .. 1 (failure limit)
    temperature_c: float
    vibration_mm_s: float


class Telemetry:
    """Samples the signals of every machine of a line; call :meth:`sample` at any simulated time."""

    def __init__(self, machines: list[Machine], seed: int = 0) -> None:
        self.machines = machines
        self._rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x7E1E,)))
        self._temp = [22.0] * len(machines)
        self._last = [machines[0].env.now if machines else 0.0] * len(machines)

    def power_kw(self, machine: Machine, state: MachineState) -> float:
        """Electrical power of ``machine`` in ``state``."""
        p = machine.station.spec.power_kw
        return {
            MachineState.PROCESSING: p.processing,
            MachineState.SETUP: p.setup,
            MachineState.IDLE: p.idle,
            MachineState.BLOCKED: p.idle if p.blocked is None else p.blocked,
            MachineState.DOWN: p.down,
            MachineState.MAINTENANCE: p.maintenance,
            MachineState.OFF_SHIFT: p.off_shift,
            MachineState.STANDBY: p.idle if p.standby is None else p.standby,
        }[state]

    def sample(self) -> list[MachineSignals]:
        """The signals of every machine now."""
        out = []
        noise = self._rng.normal(0.0, 1.0, 2 * len(self.machines))
        for i, m in enumerate(self.machines):
            now = m.env.now
            state = m.effective_state
            dt = max(0.0, now - self._last[i])
            target = _TEMPERATURE_C[state]
            self._temp[i] = target + (self._temp[i] - target) * math.exp(-dt / _TAU_MIN)
            self._last[i] = now
            condition = m.degradation
            running = state in (MachineState.PROCESSING, MachineState.SETUP)
            vibration = (1.8 + 6.0 * condition**2) if running else 0.25
            out.append(
                MachineSignals(
                    state=state,
                    power_kw=self.power_kw(m, state),
                    condition=condition,
                    temperature_c=round(self._temp[i] + 0.3 * float(noise[2 * i]), 2),
                    vibration_mm_s=round(max(0.0, vibration * (1 + 0.05 * float(noise[2 * i + 1]))), 3),
                )
            )
        return out
