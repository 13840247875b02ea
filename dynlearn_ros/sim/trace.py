"""Per-step trace of the sim bridge (``trace_path``): what the plant did at every step and why,
kept in preallocated arrays (no allocation per step until a block fills) and written as one
.npz at exit. For investigations (which joint ran fast, while braking or on a held command?),
not for the control path. No ROS imports."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# flag bits per step
FRESH = 1  # a command (valid or not) arrived since the state before this step
BRAKE = 2  # the step braked (watchdog, conflict) instead of applying the command
STALL = 4  # after this step the loop re-anchored (the bridge was > STALL_PERIODS behind)
VSTOP = 8  # the velocity after this step tripped the velocity monitor (the next steps brake)


class StepTrace:
    """Rows appended per plant step into blocks of ``block`` steps.

    Arrays written by :meth:`save` (N steps, n joints):
    ``t_wall_s`` (N,) s since the first step; ``flags`` (N,) uint8 (FRESH | BRAKE | STALL | VSTOP);
    ``steps_on_cmd`` (N,) plant steps since the last valid command, before this step;
    ``qd`` (N, n) rad/s after the step; ``tau`` (N, n) N*m applied during the step."""

    def __init__(self, n: int, block: int = 1 << 16) -> None:
        self.n = n
        self._block = block
        self._done: list[dict[str, np.ndarray]] = []
        self._new_block()
        self._t0: int | None = None

    def _new_block(self) -> None:
        b = self._block
        self._cur = {"t_ns": np.zeros(b, np.int64), "flags": np.zeros(b, np.uint8),
                     "steps_on_cmd": np.zeros(b, np.int32), "qd": np.zeros((b, self.n), np.float32),
                     "tau": np.zeros((b, self.n), np.float32)}
        self._i = 0

    def add(self, t_ns: int, flags: int, steps_on_cmd: int, qd: np.ndarray, tau: np.ndarray) -> None:
        """One step: ``t_ns`` perf_counter_ns, ``qd``/``tau`` (n,) after / during it."""
        if self._i == self._block:
            self._done.append(self._cur)
            self._new_block()
        if self._t0 is None:
            self._t0 = t_ns
        i = self._i
        c = self._cur
        c["t_ns"][i] = t_ns - self._t0
        c["flags"][i] = flags
        c["steps_on_cmd"][i] = steps_on_cmd
        c["qd"][i] = qd
        c["tau"][i] = tau
        self._i += 1

    def mark_stall(self) -> None:
        """Flag the last step as followed by a re-anchor."""
        if self._i:
            self._cur["flags"][self._i - 1] |= STALL

    def arrays(self) -> dict[str, np.ndarray]:
        blocks = [*self._done, {k: v[: self._i] for k, v in self._cur.items()}]
        out = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
        out["t_wall_s"] = out.pop("t_ns") * 1e-9
        return out

    def save(self, path: str | Path) -> None:
        np.savez(Path(path).expanduser(), **self.arrays())
