"""Plausibility checks of a trajectory data set before training (numpy only): is it a time series
at its claimed period, do its units look like rad / rad/s, is it long enough for the windows?

Each check returns plain-language warnings (a list of str, empty when all is well); nothing here
raises on odd data, the caller decides (``dynlearn-ros train`` prints them and goes on, and stops
only when no training window fits).

Velocity check, per episode: the finite difference (q_{t+1} - q_t) / dt is compared with the
trapezoid mean (qd_t + qd_{t+1}) / 2, the velocity a log sampled at dt must integrate to.
k = <dq/dt, qd> / <qd, qd> estimates their ratio: k ~ 1 means dt and the velocity match; k far
from 1 means dt (or the velocity's unit) is off by about that factor; a low correlation between
the two means consecutive rows are not consecutive samples (shuffled, mixed episodes, or rows not
at a fixed period).
"""

from __future__ import annotations

import numpy as np

from dynlearn_ros.datasets.filtering import episode_bounds
from dynlearn_ros.datasets.format import TrajectoryData

#: |k - 1| above this: dt and qd disagree (k is 1 within a few % for a log at its true period,
#: filtered or not; a wrong dt is usually off by a factor >= 2, e.g. ms vs s or a decimated log)
RATIO_TOLERANCE = 0.25
#: below this correlation of dq/dt with qd, rows are not one time series at dt (a smooth log gives
#: > 0.95 even with sensor noise; shuffled rows give ~0)
MIN_CORRELATION = 0.8
#: a revolute joint that moves more than this (rad) in one log is implausible: probably degrees
MAX_ANGLE_RANGE = 4 * np.pi
#: joint speeds above this (rad/s) are beyond any arm in the robot table: probably deg/s
MAX_SPEED = 20.0
#: a dt outside this range (s) is implausible for a robot log (ms given as s, or s as ms)
DT_RANGE = (1e-5, 1.0)


def velocity_consistency(data: TrajectoryData) -> dict:
    """{"ratio": k, "corr": float, "rows": int} pooled over all joints and episodes; k, corr NaN
    when fewer than 2 rows in every episode or the velocity is zero throughout."""
    fd, mid = [], []
    for a, b in episode_bounds(data.episode):
        if b - a < 2:
            continue
        fd.append(np.diff(data.q[a:b], axis=0) / data.dt)
        mid.append(0.5 * (data.qd[a:b][1:] + data.qd[a:b][:-1]))
    if not fd:
        return {"ratio": float("nan"), "corr": float("nan"), "rows": 0}
    x, v = np.concatenate(fd).ravel(), np.concatenate(mid).ravel()
    ok = np.isfinite(x) & np.isfinite(v)
    x, v = x[ok], v[ok]
    vv = float(v @ v)
    if vv == 0.0 or x.size < 2 or np.std(x) == 0.0:
        return {"ratio": float("nan"), "corr": float("nan"), "rows": int(x.size)}
    return {"ratio": float(x @ v / vv), "corr": float(np.corrcoef(x, v)[0, 1]), "rows": int(x.size)}


def check_time_series(data: TrajectoryData) -> list[str]:
    """Warnings about dt, the velocity against dq/dt, and units (see the module docstring)."""
    warn: list[str] = []
    if not DT_RANGE[0] <= data.dt <= DT_RANGE[1]:
        warn.append(f"dt = {data.dt:g} s is outside {DT_RANGE[0]:g} .. {DT_RANGE[1]:g} s: is it in seconds?")
    for a, b in episode_bounds(data.episode):
        if b - a >= 2:
            steps = np.diff(data.t[a:b])
            if np.any(np.abs(steps - data.dt) > 0.5 * data.dt):
                bad = int(np.sum(np.abs(steps - data.dt) > 0.5 * data.dt))
                warn.append(f"episode {int(data.episode[a])}: {bad} of {steps.size} time steps differ from dt = "
                            f"{data.dt:g} s by more than half a period (gaps, resets or another period)")
                break
    vc = velocity_consistency(data)
    if np.isfinite(vc["ratio"]):
        if vc["corr"] < MIN_CORRELATION:
            warn.append(f"dq/dt and qd correlate only {vc['corr']:.2f} (expected > {MIN_CORRELATION}): "
                        "consecutive rows do not look like one time series at dt (shuffled rows? mixed episodes?)")
        elif abs(vc["ratio"] - 1.0) > RATIO_TOLERANCE:
            warn.append(f"dq/dt is {vc['ratio']:.3g} x qd: dt = {data.dt:g} s looks wrong (a period of "
                        f"{data.dt * vc['ratio']:.3g} s would match), or qd is not in the units of q per second")
    q_range = np.nanmax(data.q, axis=0) - np.nanmin(data.q, axis=0) if len(data) else np.zeros(0)
    for name, r in zip(data.joint_names, q_range, strict=True):
        if r > MAX_ANGLE_RANGE:
            warn.append(f"joint {name} spans {r:.1f} in q: degrees instead of rad?")
            break
    # 99th percentile, not the maximum: real logs carry single-row glitches (the pneumatic arm's
    # differentiated angles reach 200 rad/s on 0.1 % of its rows, 10.6 rad/s at the 99th percentile)
    if len(data) and np.nanpercentile(np.abs(data.qd), 99) > MAX_SPEED:
        warn.append(f"99th percentile of |qd| = {np.nanpercentile(np.abs(data.qd), 99):.1f} > {MAX_SPEED} rad/s: "
                    "deg/s instead of rad/s?")
    return warn


def check_windows(data: TrajectoryData, window: int, stride: int, part: str = "data") -> list[str]:
    """Warnings when episodes of ``data`` are too short for training windows of ``window`` rows:
    rows in episodes shorter than a window are never used; none fitting is reported too (the
    trainer then stops)."""
    lengths = np.array([b - a for a, b in episode_bounds(data.episode)])
    if lengths.size == 0:
        return [f"{part}: no rows"]
    short = lengths < window
    warn = []
    if short.all():
        warn.append(f"{part}: no episode has the {window} rows of one window (longest {int(lengths.max())}); "
                    "choose a shorter --window")
    elif short.any():
        lost = int(lengths[short].sum())
        warn.append(f"{part}: {int(short.sum())} of {lengths.size} episodes are shorter than the window of "
                    f"{window} rows; their {lost} rows ({100 * lost / lengths.sum():.0f} %) are not used")
    n_windows = int(np.sum(np.maximum(0, (lengths - window) // stride + 1)))
    if 0 < n_windows < 10:
        warn.append(f"{part}: only {n_windows} windows of {window} rows: too few to train a sequence model")
    return warn
