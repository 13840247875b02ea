"""The predictor node's ROS-free core: an ac-RKN forward belief advanced by measured states and
applied torques, open-loop rollouts from it, and the online score of what was predicted.

Time and alignment (model step dt, o = [q, qd] in the model's joint order)::

    state o_k at stamp t_k ... state o_j at t_j with a_j = the torque applied over the step
    that led to o_j (sensor_msgs/JointState effort of the sim bridge; or the last command
    received before o_j arrived, which is the one applied over that step)

    observe(o_j, a_j, t_j):  m = round((t_j - t_k) / dt) model steps
        m == 0            -> too fast for the model (dropped, counted)
        1 <= m <= max_gap -> belief: step(o_k observed, a_j), then m-1 steps without an
                             observation (the gap is bridged open loop, a_j held)
        m > max_gap       -> the belief restarts from its initial value at o_j (a reset)
    After it the belief is the prior at t_j; o_j is kept for the next step and for rollouts.

    rollout(s, K):  step(o_j observed, a_hold), then s + K - 1 steps without observation, a_hold =
        the last applied torque held over the whole horizon. Row i is o at t_j + (i + 1) dt, with
        the variance summed over the steps since o_j (the runtime predictor's accumulation).

``s`` > 0 is used while states are missing: the published horizon then starts s steps after the
last state (the wall time elapsed since it), so the node keeps predicting the present and the
future from its belief instead of repeating a stale forecast. Belief, state and held torque do
not change until the next state, so the first such call rolls out once as far as max_gap + K
steps and the later ones publish slices of that rollout.

Threads: :meth:`observe` (the state path) and :meth:`rollout` (a publication) may run on two
threads. Every accepted state ends with a capture of (belief snapshot, o_j, a_j, t_j) under a
lock; a rollout copies the last capture under the same lock and runs on the model's
``rollout_twin`` (a second session, :meth:`AcrknForwardPredictor.with_twin`) restored to it, so
the state path never waits for a rollout and never sees its model state change. Without a twin
(tests, reports: one thread) the rollout runs on the model itself, restored afterwards.

Nothing here allocates per state; the rollout writes into arrays owned by this object.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor
from dynlearn_ros.runtime.slot import ModelRefused, checking

#: horizons (s) scored online against the states that later arrive (those within the horizon)
SCORE_HORIZONS_S = (0.001, 0.010, 0.050, 0.100)
#: two-sided 95 % band of a Gaussian: |error| <= Z95 * std counts as covered
Z95 = 1.959964
#: a published horizon stays within the joint limits widened by this (rad; a real arm's soft
#: limits overshoot by far less) ...
Q_MARGIN = 0.5
#: ... and within this multiple of the velocity limits; beyond, the model has diverged
QD_FACTOR = 3.0


def check_forward_model(model: AcrknForwardPredictor, joint_names: Sequence[str], q: np.ndarray,
                        step_dt: float, steps: int = 20) -> None:
    """A forward model the node can run: joints ``joint_names`` (the model's own order), the
    observation [q, qd] (2n) and the action a torque per joint (n), a dt that divides
    ``step_dt`` (s), and ``steps`` open-loop predictions from ``q`` (n,) rad at rest with zero
    torque finite with variance >= 0. Raises :class:`ModelRefused`; the model is reset after."""
    n = len(joint_names)
    if tuple(model.metadata.joint_names) != tuple(joint_names):
        raise ModelRefused(f"joints {list(model.metadata.joint_names)} differ from the predictor's {list(joint_names)}")
    if model.obs_dim != 2 * n or model.act_dim != n:
        raise ModelRefused(f"observation {model.obs_dim} / action {model.act_dim} values: the predictor needs "
                           f"[q, qd] ({2 * n}) and a torque per joint ({n})")
    dt = model.metadata.dt
    if dt is None or dt <= 0:
        raise ModelRefused(f"metadata dt {dt!r}: a forward model needs its step period")
    if decimation(step_dt, dt) is None:
        raise ModelRefused(f"step_dt {step_dt * 1e3:g} ms is not a whole multiple of the model's dt {dt * 1e3:g} ms")
    obs = np.concatenate([q, np.zeros(n)])
    mean, var = np.zeros((steps, 2 * n)), np.zeros((steps, 2 * n))
    snap = np.zeros(model.snapshot_size, dtype=np.float32)
    with checking(model):
        if model.rollout(obs, np.zeros(n), mean, var, snap) != steps or np.any(var < 0):
            raise ModelRefused(f"{steps} predictions at rest from {np.round(q, 3).tolist()} are not all finite "
                               "with variance >= 0")


def decimation(step_dt: float, model_dt: float) -> int | None:
    """k with step_dt = k * model_dt (k >= 1, within 1e-6 relative), else None."""
    k = round(step_dt / model_dt)
    if k < 1 or abs(k * model_dt - step_dt) > 1e-6 * step_dt:
        return None
    return int(k)


@dataclass
class StreamCounters:
    """What happened to the states and rollouts (all cumulative)."""

    observed: int = 0          # states that advanced the belief
    resets: int = 0            # belief restarts (first state, gap beyond max_gap, non-finite model output)
    bridged_steps: int = 0     # model steps run without an observation to bridge gaps between states
    gaps: int = 0              # times one or more states were missing between two observed ones
    largest_gap: int = 0       # the most states missing in one gap (model steps; a reset's gap included)
    too_fast: int = 0          # states less than half a model step after the last one (dropped)
    nonfinite_model: int = 0   # steps whose output was not finite (belief restarted)
    rollouts: int = 0
    rollout_steps: int = 0     # model steps run by rollouts
    short_rollouts: int = 0    # rollouts that stopped early on a non-finite step (not published)
    implausible_rollouts: int = 0   # rollouts leaving the joint / velocity limits (not published)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class OnlineScore:
    """Squared-error sums and 95 % band hits of published predictions, scored when the state at
    their target time arrives: per horizon h (``SCORE_HORIZONS_S``), positions and velocities."""

    horizons_s: tuple[float, ...]
    n: int
    count: np.ndarray = field(init=False)
    sq_q: np.ndarray = field(init=False)
    sq_qd: np.ndarray = field(init=False)
    in_band_q: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        h = len(self.horizons_s)
        self.count = np.zeros(h, dtype=np.int64)
        self.sq_q = np.zeros(h)
        self.sq_qd = np.zeros(h)
        self.in_band_q = np.zeros(h, dtype=np.int64)

    def summary(self) -> dict:
        """{"<h ms>": {"n", "rmse_q_rad", "rmse_qd_rad_s", "coverage95_q"}} for scored horizons."""
        out = {}
        for i, h in enumerate(self.horizons_s):
            c = int(self.count[i])
            if c:
                out[f"{h * 1e3:g}ms"] = {"n": c, "rmse_q_rad": float(np.sqrt(self.sq_q[i] / (c * self.n))),
                                         "rmse_qd_rad_s": float(np.sqrt(self.sq_qd[i] / (c * self.n))),
                                         "coverage95_q": float(self.in_band_q[i] / (c * self.n))}
        return out


class ForwardStream:
    """The forward belief of one model, fed by states, rolled out for publication.

    ``horizon`` published points every ``step_dt`` s (a whole multiple k of the model's dt: the
    rollout runs k model steps per point); ``max_gap_s``: the longest gap between two states
    bridged open loop (longer: reset), also the longest time past the last state the node keeps
    predicting while states are missing. Arrays (model joint order, n joints):
    ``q_pred`` / ``qd_pred`` / ``q_std`` / ``qd_std`` (horizon, n) after :meth:`rollout`.
    """

    def __init__(self, model: AcrknForwardPredictor, horizon: int, step_dt: float, max_gap_s: float,
                 pending: int = 64, limits: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        self.model = model
        self.n = n = model.act_dim
        self.dt = float(model.metadata.dt)
        k = decimation(step_dt, self.dt)
        if k is None:
            raise ValueError(f"step_dt {step_dt} s is not a whole multiple of the model's dt {self.dt} s")
        self.k, self.horizon, self.step_dt = k, int(horizon), k * self.dt
        self.max_gap_steps = max(1, int(round(max_gap_s / self.dt)))
        rows = self.max_gap_steps + k * self.horizon
        self._mean = np.zeros((rows, 2 * n))
        self._var = np.zeros((rows, 2 * n))
        self._snap = np.zeros(model.snapshot_size, dtype=np.float32)
        self.lock = threading.Lock()
        # the last accepted state as a rollout starts from it (written by observe, read by rollout)
        self._cap_snap = np.zeros(model.snapshot_size, dtype=np.float32)
        self._cap_obs, self._cap_action = np.zeros(2 * n), np.zeros(n)
        self._cap_t: float | None = None
        self._cap_seq = 0
        self._ro_obs, self._ro_action = np.zeros(2 * n), np.zeros(n)
        self._one_mean = np.zeros(2 * n)
        self._one_var = np.zeros(2 * n)
        self.obs = np.zeros(2 * n)       # o at the last state (model order)
        self.action = np.zeros(n)        # the last applied torque (held in rollouts)
        self.t_last: float | None = None
        self.since_reset = 0             # states observed since the belief (re)started
        self.q_pred = np.zeros((self.horizon, n))
        self.qd_pred = np.zeros((self.horizon, n))
        self.q_std = np.zeros((self.horizon, n))
        self.qd_std = np.zeros((self.horizon, n))
        self.t_base = 0.0                # stamp the published horizon starts from (point h: + (h+1) step_dt)
        self.counters = StreamCounters()
        # online score: the published predictions at the scored horizons, kept until their time
        self.score = OnlineScore(SCORE_HORIZONS_S, n)
        self._score_idx = [int(round(h / self.dt)) for h in SCORE_HORIZONS_S]
        self._p_t = np.full(pending, np.nan)          # base stamp of each kept rollout
        self._p_q = np.zeros((pending, len(SCORE_HORIZONS_S), n))
        self._p_qd = np.zeros((pending, len(SCORE_HORIZONS_S), n))
        self._p_std = np.zeros((pending, len(SCORE_HORIZONS_S), n))
        self._p_next = 0
        self._err = np.zeros(n)
        self._cache_seq: int | None = None   # capture the long rollout kept while states are missing came from
        # plausibility of a published horizon: q within the joint limits widened by Q_MARGIN rad,
        # |qd| within QD_FACTOR x the velocity limits (a diverging model leaves them long before inf)
        self._lo = self._hi = self._vmax = None
        if limits is not None:
            lower, upper, vmax = (np.asarray(x, dtype=np.float64) for x in limits)
            self._lo, self._hi, self._vmax = lower - Q_MARGIN, upper + Q_MARGIN, QD_FACTOR * vmax

    def swap_model(self, model: AcrknForwardPredictor) -> AcrknForwardPredictor:
        """Run ``model`` from now on (same joints, observation, action and dt: the caller checked
        them with :func:`check_forward_model`; its belief may differ in size); the belief restarts
        at the next state. Returns the previous model."""
        with self.lock:
            previous, self.model = self.model, model
            if self._snap.size != model.snapshot_size:
                self._snap = np.zeros(model.snapshot_size, dtype=np.float32)
                self._cap_snap = np.zeros(model.snapshot_size, dtype=np.float32)
        self.reset()
        return previous

    # -- states -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the belief; the next state restarts it."""
        self.model.reset()
        self.t_last = None
        self.since_reset = 0
        with self.lock:
            self._cap_t = None
            self._cache_seq = None

    def observe(self, q: np.ndarray, qd: np.ndarray, action: np.ndarray, t: float) -> bool:
        """State (q, qd) (n,) rad, rad/s at stamp ``t`` s, reached under the torque ``action`` (n,)
        N*m; all finite, ``t`` after the last state (the caller's gate). False if dropped (less
        than half a model step after the last state)."""
        n = self.n
        if self.t_last is not None:
            m = int(round((t - self.t_last) / self.dt))
            if m <= 0:
                self.counters.too_fast += 1
                return False
            if m > 1:
                self.counters.gaps += 1
                self.counters.largest_gap = max(self.counters.largest_gap, m - 1)
            if m > self.max_gap_steps:
                self.counters.resets += 1
                self.model.reset()
                self.since_reset = 0
            else:
                ok = self.model.predict(self.obs, action, self._one_mean, self._one_var)
                for _ in range(m - 1):
                    ok = ok and self.model.predict(None, action, self._one_mean, self._one_var)
                self.counters.bridged_steps += m - 1
                if not ok:
                    self.counters.nonfinite_model += 1
                    self.counters.resets += 1
                    self.model.reset()
                    self.since_reset = 0
        else:
            self.counters.resets += 1
            self.model.reset()
            self.since_reset = 0
        self.obs[:n] = q
        self.obs[n:] = qd
        self.action[:] = action
        self.t_last = t
        self.since_reset += 1
        self.counters.observed += 1
        with self.lock:
            self.model.snapshot_into(self._cap_snap)
            self._cap_obs[:] = self.obs
            self._cap_action[:] = action
            self._cap_t = t
            self._cap_seq += 1
            self._score(q, qd, t)
        return True

    # -- rollouts ---------------------------------------------------------------------------------
    def rollout(self, skip: int = 0) -> bool:
        """Predict the horizon starting ``skip`` model steps after the last state (0 <= skip <=
        max_gap): fills q_pred, qd_pred, q_std, qd_std and t_base. False (nothing filled) before
        the first state or when a step is not finite. One rollout at a time (one caller thread);
        it may run beside :meth:`observe` (module docstring)."""
        with self.lock:
            if self._cap_t is None:
                return False
            model = self.model
            runner = model.rollout_twin or model
            snap, seq, t_from = self._snap, self._cap_seq, self._cap_t
            snap[:] = self._cap_snap
            self._ro_obs[:] = self._cap_obs
            self._ro_action[:] = self._cap_action
        n, k = self.n, self.k
        skip = min(max(0, int(skip)), self.max_gap_steps)
        rows = skip + k * self.horizon
        mean, var = self._mean[:rows], self._var[:rows]
        if skip and self._cache_seq == seq:
            pass   # the same belief, state and held torque: a slice of the rollout already computed
        else:
            full = self._mean.shape[0] if skip else rows   # while stale: once, as far as max_gap
            runner.restore(snap)   # the captured state (a no-op change on the model itself)
            done = runner.rollout(self._ro_obs, self._ro_action, self._mean[:full], self._var[:full], snap)
            self.counters.rollouts += 1
            self.counters.rollout_steps += full
            if done != full:
                self.counters.short_rollouts += 1
                self._cache_seq = None
                return False
            self._cache_seq = seq if skip else None
        if self._lo is not None and not self._plausible(mean[skip:rows]):   # the rows published
            self.counters.implausible_rollouts += 1
            return False
        sel = slice(skip + k - 1, rows, k)   # row i predicts t_last + (i + 1) dt
        self.q_pred[:] = mean[sel, :n]
        self.qd_pred[:] = mean[sel, n:]
        np.sqrt(var[sel, :n], out=self.q_std)
        np.sqrt(var[sel, n:], out=self.qd_std)
        self.t_base = t_from + skip * self.dt
        with self.lock:
            self._keep_for_score(mean, var, skip, t_from)
        return True

    def _plausible(self, mean: np.ndarray) -> bool:
        n = self.n
        q, qd = mean[:, :n], mean[:, n:]
        return bool(np.all(q >= self._lo) and np.all(q <= self._hi) and np.all(np.abs(qd) <= self._vmax))

    # -- online score -----------------------------------------------------------------------------
    def _keep_for_score(self, mean: np.ndarray, var: np.ndarray, skip: int, t_from: float) -> None:
        if skip:   # only forecasts from a fresh state are scored (the figures are per horizon from a state)
            return
        i = self._p_next % self._p_t.size
        self._p_next += 1
        self._p_t[i] = t_from
        n = self.n
        for j, r in enumerate(self._score_idx):
            if r <= mean.shape[0]:
                self._p_q[i, j] = mean[r - 1, :n]
                self._p_qd[i, j] = mean[r - 1, n:]
                self._p_std[i, j] = np.sqrt(var[r - 1, :n])
            else:
                self._p_q[i, j] = np.nan

    def _score(self, q: np.ndarray, qd: np.ndarray, t: float) -> None:
        s, err = self.score, self._err
        for i in range(self._p_t.size):
            t0 = self._p_t[i]
            if np.isnan(t0):
                continue
            r = int(round((t - t0) / self.dt))
            if r > self._score_idx[-1]:
                self._p_t[i] = np.nan
                continue
            for j, rj in enumerate(self._score_idx):
                if r == rj and not np.isnan(self._p_q[i, j, 0]):
                    np.subtract(q, self._p_q[i, j], out=err)
                    s.count[j] += 1
                    s.sq_q[j] += float(err @ err)
                    s.in_band_q[j] += int(np.count_nonzero(np.abs(err) <= Z95 * self._p_std[i, j]))
                    np.subtract(qd, self._p_qd[i, j], out=err)
                    s.sq_qd[j] += float(err @ err)
