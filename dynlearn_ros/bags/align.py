"""Joint states and the commands applied between them, aligned by stamp, as rows of the generic
format (:class:`~dynlearn_ros.datasets.format.TrajectoryData`).

The convention is the simulator data sets' (:mod:`dynlearn_ros.sim.collect`): row k holds the
state (q_k, qd_k) at stamp t_k, the torque tau_k applied from t_k to t_{k+1}, and the
acceleration that torque produced, qdd_k = (qd_{k+1} - qd_k) / (t_{k+1} - t_k) (exact for a
semi-implicit Euler step such as PyBullet's), so that tau_k = M(q_k) qdd_k + h(q_k, qd_k) up to
what the model does not know. qdd_k uses nothing later than state k+1: it is a causal estimate,
the same one the trainer node computes online (``learning.online.StateDifferencer``).
Optionally a causal low-pass (:func:`lowpass_causal`, for noisy real velocities) filters qdd and
tau alike, so both carry the same delay and stay paired.

Which command was applied over [t_k, t_{k+1}):
* ``torque_source="command"``: the last command whose bag time is before state k+1's. A
  controller answers state k with its command and the plant applies it until state k+1, so the
  *send* times are ordered state k < command k < state k+1 on one machine's clock: the recorder
  node stores the publisher's send time (DDS source timestamp) as the bag time for that reason.
  ``ros2 bag record`` stores the receive time, where messages of two publishers can swap (measured
  in a lockstep run: 96 of 1,746 commands received after the next state); for such bags prefer
  ``torque_source="effort"`` when the driver reports the applied torque. Commands carry no stamp of
  their own (std_msgs/Float64MultiArray), which is why bag times order them. A row whose last
  command came before state k (none fresh in between) is counted as ``held`` and dropped unless
  ``keep_held``: the driver may have held the previous command, or the recorder may have lost
  the new one (a reader that falls behind the publisher's history, depth 1 for commands, misses
  it), and only in the first case is the previous command the right label. Rows before the first
  command or from the last command on are dropped (the recording of commands had not started or
  had ended).
* ``torque_source="effort"``: the ``effort`` of state k+1 (the sim bridge and torque-controlled
  drivers report there the torque applied over the step that led to the state).

States are ordered by header stamp; repeated stamps, non-finite values and missing joints drop
the state; a gap of more than 1.5 periods (or less than half a period) between consecutive states
starts a new episode, so no row differences across a gap. dt is the median stamp step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter, lfilter, lfilter_zi

from dynlearn_ros.datasets.filtering import episode_bounds
from dynlearn_ros.datasets.format import TrajectoryData


@dataclass
class StateSeries:
    """Joint states of one topic: stamp (N,) s (header), log (N,) int ns (bag receive time),
    q (N, n) rad, qd (N, n) rad/s, effort (N, n) N*m or None, joint_names (n,)."""

    stamp: np.ndarray
    log: np.ndarray
    q: np.ndarray
    qd: np.ndarray
    effort: np.ndarray | None
    joint_names: tuple[str, ...]
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class CommandSeries:
    """Commands: log (M,) int ns (bag receive time), tau (M, n) N*m in the states' joint order."""

    log: np.ndarray
    tau: np.ndarray


def lowpass_causal(x: np.ndarray, dt: float, cutoff_hz: float, order: int = 2,
                   episode: np.ndarray | None = None) -> np.ndarray:
    """Causal Butterworth low-pass of ``x`` (N, ...) along axis 0, restarted at each episode
    (contiguous ids in ``episode`` (N,)) from its first value (no start-up transient for a
    constant signal). Output k depends on inputs <= k only; the delay at low frequency is about
    order / (2 pi cutoff) s (Butterworth group delay ~ sqrt(2)/(2 pi fc) for order 2)."""
    x = np.asarray(x, dtype=np.float64)
    nyquist = 0.5 / dt
    if not 0 < cutoff_hz < nyquist:
        raise ValueError(f"cutoff {cutoff_hz} Hz must lie in (0, {nyquist}) Hz for dt={dt} s")
    b, a = butter(order, cutoff_hz / nyquist)
    zi = lfilter_zi(b, a)
    out = np.empty_like(x)
    ep = np.zeros(x.shape[0], dtype=np.int64) if episode is None else episode
    for s, e in episode_bounds(ep):
        seg = x[s:e]
        z0 = zi.reshape((-1,) + (1,) * (seg.ndim - 1)) * seg[:1]
        out[s:e], _ = lfilter(b, a, seg, axis=0, zi=z0)
    return out


def clean_states(states: StateSeries) -> StateSeries:
    """States sorted by stamp, without repeated stamps or non-finite rows (counted in ``dropped``)."""
    order = np.argsort(states.stamp, kind="stable")
    keep = np.ones(order.size, dtype=bool)
    stamp = states.stamp[order]
    keep[1:] = np.diff(stamp) > 0
    dropped = dict(states.dropped)
    dropped["repeated_stamp"] = dropped.get("repeated_stamp", 0) + int((~keep).sum())
    finite = np.isfinite(states.q[order]).all(axis=1) & np.isfinite(states.qd[order]).all(axis=1)
    dropped["nonfinite"] = dropped.get("nonfinite", 0) + int((keep & ~finite).sum())
    keep &= finite
    idx = order[keep]
    eff = None if states.effort is None else states.effort[idx]
    return StateSeries(states.stamp[idx], states.log[idx], states.q[idx], states.qd[idx], eff,
                       states.joint_names, dropped)


def align(states: StateSeries, commands: CommandSeries | None, torque_source: str = "command",
          qdd_cutoff_hz: float = 0.0, meta: dict | None = None, keep_held: bool = False) -> TrajectoryData:
    """Rows (q_k, qd_k, qdd_k, tau_k) of the module docstring's convention.

    torque_source: "command" (needs ``commands``) or "effort" (needs ``states.effort``);
    qdd_cutoff_hz > 0: causal low-pass of qdd and tau at that cut-off (Hz); keep_held: keep the
    rows without a fresh command, labelled with the held one. ValueError when too
    few rows remain (fewer than 2 consecutive states with a command between them)."""
    if torque_source not in ("command", "effort"):
        raise ValueError(f"torque_source must be 'command' or 'effort', got {torque_source!r}")
    s = clean_states(states)
    n_states = s.stamp.size
    if n_states < 3:
        raise ValueError(f"only {n_states} usable joint states; need at least 3")
    steps = np.diff(s.stamp)
    dt = float(np.median(steps))
    if not dt > 0:
        raise ValueError("joint state stamps do not advance")
    # a row k pairs state k with state k+1: valid when the step is a regular period
    pair_ok = (steps > 0.5 * dt) & (steps < 1.5 * dt)
    n = s.q.shape[1]
    tau = np.full((n_states - 1, n), np.nan)
    counts: dict[str, int] = {"states": int(n_states), "gaps": int((~pair_ok).sum())}
    if torque_source == "command":
        if commands is None or commands.log.size == 0:
            raise ValueError("no commands to align (torque_source='command')")
        if commands.tau.shape[1] != n:
            raise ValueError(f"commands have {commands.tau.shape[1]} values for {n} joints")
        corder = np.argsort(commands.log, kind="stable")
        clog, ctau = commands.log[corder], commands.tau[corder]
        # last command received at or before state k+1 was received; fresh if after state k
        j = np.searchsorted(clog, s.log[1:], side="right") - 1
        have = j >= 0
        tau[have] = ctau[j[have]]
        fresh = have & (clog[np.maximum(j, 0)] > s.log[:-1])
        # states after the last recorded command (the recording of commands ended first): unknown
        after = s.log[:-1] >= clog[-1]
        counts["after_last_command"] = int((pair_ok & after).sum())
        counts["held"] = int((pair_ok & have & ~fresh & ~after).sum())
        counts["no_command"] = int((pair_ok & ~have).sum())
        pair_ok &= have & ~after & (fresh | keep_held)
    else:
        if s.effort is None:
            raise ValueError("joint states carry no effort (torque_source='effort')")
        tau[:] = s.effort[1:]
    pair_ok &= np.isfinite(tau).all(axis=1)
    qdd = (s.qd[1:] - s.qd[:-1]) / steps[:, None]
    rows = np.flatnonzero(pair_ok)
    if rows.size < 2:
        raise ValueError(f"only {rows.size} aligned rows (states {n_states}, counts {counts})")
    # episodes: runs of consecutive valid rows
    episode = np.cumsum(np.r_[1, np.diff(rows) != 1]) - 1
    stamp = s.stamp[rows]
    starts = stamp[np.r_[0, np.flatnonzero(np.diff(episode)) + 1]]
    t = stamp - starts[episode]
    qdd_rows, tau_rows = qdd[rows], tau[rows]
    if qdd_cutoff_hz > 0:
        qdd_rows = lowpass_causal(qdd_rows, dt, qdd_cutoff_hz, episode=episode)
        tau_rows = lowpass_causal(tau_rows, dt, qdd_cutoff_hz, episode=episode)
    counts["rows"] = int(rows.size)
    counts["episodes"] = int(episode[-1] + 1)
    info = {**(meta or {}), "alignment": {"torque_source": torque_source, "qdd": "(qd[k+1] - qd[k]) / dt_k",
                                          "qdd_cutoff_hz": qdd_cutoff_hz, "keep_held": keep_held,
                                          "counts": counts,
                                          "dropped_states": s.dropped}}
    if torque_source == "command" and s.effort is not None:
        # the applied torque the plant reports: agreement says the pairing is right
        eff = s.effort[1:][rows]
        tol = 1e-9 * np.maximum(1.0, np.abs(eff))
        info["alignment"]["rows_command_equals_next_effort"] = float(
            np.mean(np.all(np.abs(tau[rows] - eff) <= tol, axis=1)))
    return TrajectoryData(t=t, q=s.q[rows], qd=s.qd[rows], tau=tau_rows, episode=episode,
                          joint_names=s.joint_names, dt=dt, qdd=qdd_rows, meta=info)
