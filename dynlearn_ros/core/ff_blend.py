"""Blend a learned feed-forward in over a few hundred milliseconds after it takes over.

    tau_ff(t) = tau_a + s((t - t_b) / T) (tau_l - tau_a),      s(x) = 10 x^3 - 15 x^4 + 6 x^5 on [0, 1]

tau_l (n,) N*m is the learned model's feed-forward, tau_a (n,) N*m the analytic (URDF) model's at
the same query, t_b (s, state time) the moment the learned model took over (the first valid
state; the end of a following-error fault), T = ``blend_s`` (s). Past T the law is the learned
model's alone, bit for bit.

Why (measured, docs/safety.md "A start that trips it"): a learned model confident on its own
training inputs can be wrong by a whole torque offset on another plant, e.g. the shipped SVDKL
(trained with 5 kg at the flange) on the bare iiwa is 2.9 N*m off on joint 6 at home, where the
schedule's K_P is 13 N*m/rad and the joint's inertia 0.009 kg m^2. Applied in one step, that
offset accelerates the wrist at ~300 rad/s^2: joint 6 reached 3.38 rad/s in 33 ms (limit 3.14)
and the bridge's velocity stop braked. The controller's first command is the analytic torque
(core/control.py), so without a blend the learned offset arrives as a step one tick later.

Choice of T: ramped, the offset D is followed quasi-statically by an error e = s D / K whose
speed peaks at (D / K) * max s' / T = 1.875 D / (K T). For the case above D / K = 0.22 rad, so
T = 0.5 s keeps the offset's own contribution to 0.82 rad/s (a quarter of the limit) while the
joint's closed-loop time constant (1 / omega_min = 0.1 s at K_min) is well inside T, so the
quasi-static picture holds. During the blend the realized-error sigma (core/residual.py, when
on) measures the blended feed-forward's error, i.e. it sees the learned model's offset grow and
stiffens the gains before the offset is fully applied. The analytic model needs no blend
(tau_l = tau_a); the controller skips it then.

No allocation per tick: one extra analytic prediction (Pinocchio RNEA, ~2-10 us) per tick only
while the blend runs.
"""

from __future__ import annotations

import numpy as np

from dynlearn_ros.core.inverse_model import InverseModel, InverseQuery
from dynlearn_ros.core.trajectories import min_jerk


class FeedForwardBlend:
    """The blend above for n joints over ``blend_s`` seconds (> 0)."""

    def __init__(self, n: int, blend_s: float) -> None:
        if not (np.isfinite(blend_s) and blend_s > 0):
            raise ValueError(f"blend_s must be finite and > 0, got {blend_s}")
        self.blend_s = float(blend_s)
        self._tau_a = np.zeros(n)
        self._std_a = np.zeros(n)
        self.t_start: float | None = None   # state time the blend started (s); None: not armed
        self.active = False
        self.ticks = 0   # ticks in which the blend changed the feed-forward (all blends)

    def start(self) -> None:
        """Arm the blend: it starts at the next :meth:`apply` (the learned model takes over)."""
        self.t_start = None
        self.active = True

    def weight(self, t_state: float) -> float:
        """s in [0, 1] at the tick's state time ``t_state`` (s); the first call after
        :meth:`start` starts the clock (s = 0); s = 1 ends the blend (``active`` False)."""
        if not self.active:
            return 1.0
        if self.t_start is None:
            self.t_start = float(t_state)
        s = min_jerk((float(t_state) - self.t_start) / self.blend_s)[0]
        if s >= 1.0:
            self.active = False
        return s

    def mix(self, s: float, analytic: InverseModel, query: InverseQuery, tau_ff: np.ndarray) -> None:
        """tau_ff (n,) N*m, the learned prediction at ``query``, becomes in place
        tau_a + s (tau_ff - tau_a), tau_a the analytic prediction at the same query."""
        analytic.predict(query, self._tau_a, self._std_a)
        tau_ff -= self._tau_a
        tau_ff *= s
        tau_ff += self._tau_a
        self.ticks += 1
