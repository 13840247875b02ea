"""The soak's memory verdict from an RSS series: a least-squares slope after the warm-up with its
standard error, the slope per window (docs/safety.md, "Memory, seventh session"), and the
"memory flat" test of the Deliver line on the windows' peaks, with the same test on their
floors as a diagnostic (docs/safety.md, "Memory: what flat means").

    python -m dynlearn_ros.faults.rss_trend SOAK.json [--window-min 5] [--warmup-min 5]

prints, per node of a ``bench soak --json`` file (its RSS and, where recorded, its anonymous RSS), the windows table of docs/safety.md (window,
slope MB/min, mean and lowest RSS MB), the fit after the warm-up, the peak and floor verdicts and, where the
JSON has the events' times, the anonymous RSS change per event kind (:func:`attribute`). No ROS,
numpy only.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import numpy as np

#: the leak rate "memory flat" allows (MB/min): 9.6 MB in an 8-hour shift, under 10 % of either
#: node's anonymous memory (bridge ~100 MB, controller 50-75 MB); docs/safety.md
FLAT_RATE_MB_PER_MIN = 0.02
#: how far two window floors of a node that does not grow have moved apart (MB): 0.18 MB in one
#: step (the no-event soak of the eighth session, both nodes at one sample), 0.13 MB over 579 swaps
FLOOR_NOISE_MB = 0.2


def linear_slope(t_min: np.ndarray, mb: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of ``mb`` (m,) MB over ``t_min`` (m,) minutes, m >= 3, and its standard
    error from the residuals (both MB/min). The error assumes independent residuals; RSS samples
    a few seconds apart are correlated, so it is a lower bound on the slope's real uncertainty:
    hence the windows beside it."""
    x = t_min - t_min.mean()
    sxx = float(x @ x)
    b = float(x @ (mb - mb.mean()) / sxx)
    resid = mb - mb.mean() - b * x
    return b, float(np.sqrt(float(resid @ resid) / (len(x) - 2) / sxx))


def rss_trend(series_s_mb: Sequence[Sequence[float]], window_min: float = 5.0, warmup_min: float = 5.0) -> dict:
    """``series_s_mb``: (m, 2) samples [time since start s, RSS MB]. Returns

    * ``windows``: consecutive windows of ``window_min`` from 0 (the last one may be shorter, kept
      if it holds >= 3 samples): {"from_min", "to_min", "slope_mb_per_min", "mean_mb", "min_mb", "samples"};
    * ``fit``: {"from_min", "slope_mb_per_min", "stderr_mb_per_min", "samples"} over t >= ``warmup_min``
      (None with fewer than 3 samples there);
    * ``lowest_per_window_mb``: each window's lowest RSS (a leak raises the floor, noise does not
      have to);
    * ``highest_per_window_mb``: each window's highest RSS;
    * ``peak``: the "memory flat" verdict on those peaks (:func:`peak_verdict`; None when too short);
    * ``floor``: the same test on the floors, a diagnostic (:func:`floor_verdict`)."""
    s = np.asarray(series_s_mb, dtype=float).reshape(-1, 2)
    t, mb = s[:, 0] / 60.0, s[:, 1]
    windows = []
    if len(t):
        k = 0
        while k * window_min <= t[-1]:
            lo, hi = k * window_min, (k + 1) * window_min
            m = (t >= lo) & (t < hi)
            if m.sum() >= 3:
                b, _ = linear_slope(t[m], mb[m])
                windows.append({"from_min": lo, "to_min": min(hi, float(t[-1])), "slope_mb_per_min": b,
                                "mean_mb": float(mb[m].mean()), "min_mb": float(mb[m].min()), "max_mb": float(mb[m].max()),
                                "samples": int(m.sum())})
            k += 1
    m = t >= warmup_min
    fit = None
    if m.sum() >= 3:
        b, se = linear_slope(t[m], mb[m])
        fit = {"from_min": warmup_min, "slope_mb_per_min": b, "stderr_mb_per_min": se, "samples": int(m.sum())}
    return {"windows": windows, "fit": fit, "lowest_per_window_mb": [w["min_mb"] for w in windows],
            "highest_per_window_mb": [w["max_mb"] for w in windows],
            "peak": peak_verdict(windows, window_min, warmup_min),
            "floor": floor_verdict(windows, window_min, warmup_min)}


def _window_rise(windows: Sequence[dict], key: str, window_min: float, warmup_min: float,
                 rate_mb_per_min: float, noise_mb: float) -> dict | None:
    """``key`` ("min_mb" or "max_mb") of the last window against the first window after the warm-up:
    {"first_mb", "last_mb", "span_min", "rise_mb", "allowed_mb" (``noise_mb`` + ``rate_mb_per_min``
    x the minutes between the two windows' starts), "resolvable_rate_mb_per_min", "flat"}. Only
    windows starting at or after ``warmup_min`` count, the last one only when it covers at least
    half a window (a short window's extremes are biased). None with fewer than two such windows
    (the run is too short to judge)."""
    late = [w for w in windows if w["from_min"] >= warmup_min - 1e-9]
    if late and late[-1]["to_min"] - late[-1]["from_min"] < 0.5 * window_min:
        late = late[:-1]
    if len(late) < 2:
        return None
    first, last = late[0], late[-1]
    span = last["from_min"] - first["from_min"]
    rise = last[key] - first[key]
    allowed = noise_mb + rate_mb_per_min * span
    return {"first_mb": first[key], "last_mb": last[key], "span_min": span, "rise_mb": rise, "allowed_mb": allowed,
            "resolvable_rate_mb_per_min": allowed / span if span else None, "flat": bool(rise <= allowed)}


def peak_verdict(windows: Sequence[dict], window_min: float = 5.0, warmup_min: float = 5.0,
                 rate_mb_per_min: float = FLAT_RATE_MB_PER_MIN, noise_mb: float = FLOOR_NOISE_MB) -> dict | None:
    """"Memory flat" (docs/safety.md, as revised in the ninth session): the highest RSS of the last
    window does not exceed that of the first window after the warm-up by more than ``noise_mb`` +
    ``rate_mb_per_min`` x the minutes between the two windows' starts. The peak is the memory the
    node needs; a leak raises it, a bounded saw-tooth does not (:func:`_window_rise`)."""
    return _window_rise(windows, "max_mb", window_min, warmup_min, rate_mb_per_min, noise_mb)


def floor_verdict(windows: Sequence[dict], window_min: float = 5.0, warmup_min: float = 5.0,
                  rate_mb_per_min: float = FLAT_RATE_MB_PER_MIN, noise_mb: float = FLOOR_NOISE_MB) -> dict | None:
    """The same test on the lowest RSS per window (the ninth session's first definition, kept as a
    diagnostic: a saw-tooth whose cycle is minutes long moves the floors of 5-minute windows with
    its phase; a floor rising under level peaks is a saw-tooth's amplitude shrinking)."""
    return _window_rise(windows, "min_mb", window_min, warmup_min, rate_mb_per_min, noise_mb)


def attribute(series_s_mb: Sequence[Sequence[float]], event_times_s: dict[str, Sequence[float]],
              from_min: float = 5.0) -> dict | None:
    """Which events the RSS grows with: each interval between two samples from ``from_min`` on is one
    row (its RSS change; how many events of each kind were sent in it), fitted by least squares as
    ``change = sum_k n_k x per_event_k + per_interval``. Returns {kind: {"kb_per_event",
    "stderr_kb", "events", "intervals_only_this_kind", "median_kb_only_this_kind"}, ...,
    "quiet": {"kb_per_interval", "stderr_kb", "intervals", "median_kb"}} (kB = 1e3 bytes; the
    medians over intervals with that kind alone, or with no event, are robust to a saw-tooth),
    None with too few intervals. A kind never sent in the range is left out."""
    s = np.asarray(series_s_mb, dtype=float).reshape(-1, 2)
    keep = s[:-1, 0] >= from_min * 60.0
    lo, hi, dx = s[:-1, 0][keep], s[1:, 0][keep], np.diff(s[:, 1])[keep] * 1e3
    kinds = [k for k, v in event_times_s.items() if len(v)]
    counts = np.array([[np.sum((np.asarray(event_times_s[k]) > a) & (np.asarray(event_times_s[k]) <= b))
                        for k in kinds] for a, b in zip(lo, hi, strict=True)], dtype=float).reshape(len(lo), len(kinds))
    kinds = [k for j, k in enumerate(kinds) if counts[:, j].sum() > 0]
    counts = counts[:, [j for j in range(counts.shape[1]) if counts[:, j].sum() > 0]]
    x = np.column_stack([counts, np.ones(len(lo))])
    if len(lo) <= x.shape[1] + 2:
        return None
    coef, *_ = np.linalg.lstsq(x, dx, rcond=None)
    resid = dx - x @ coef
    se = np.sqrt(np.diag(np.linalg.pinv(x.T @ x)) * float(resid @ resid) / (len(lo) - x.shape[1]))
    out = {}
    busy = counts.sum(axis=1) > 0
    for j, k in enumerate(kinds):
        alone = (counts[:, j] > 0) & (counts.sum(axis=1) == counts[:, j])
        out[k] = {"kb_per_event": float(coef[j]), "stderr_kb": float(se[j]), "events": int(counts[:, j].sum()),
                  "intervals_only_this_kind": int(alone.sum()),
                  "median_kb_only_this_kind": float(np.median(dx[alone])) if alone.any() else None}
    out["quiet"] = {"kb_per_interval": float(coef[-1]), "stderr_kb": float(se[-1]), "intervals": int((~busy).sum()),
                    "median_kb": float(np.median(dx[~busy])) if (~busy).any() else None}
    return out


def format_attribution(name: str, att: dict) -> str:
    lines = [f"{name}, change per event (least squares over the sample intervals; median of intervals with that kind alone):"]
    for k, v in att.items():
        if k == "quiet":
            med = "-" if v["median_kb"] is None else f"{v['median_kb']:+.1f}"
            lines.append(f"  no event: {v['kb_per_interval']:+7.1f} +- {v['stderr_kb']:.1f} kB per interval "
                         f"(median {med} kB over {v['intervals']})")
        else:
            med = "-" if v["median_kb_only_this_kind"] is None else f"{v['median_kb_only_this_kind']:+.1f}"
            lines.append(f"  {k}: {v['kb_per_event']:+7.1f} +- {v['stderr_kb']:.1f} kB per event ({v['events']} events; "
                         f"median {med} kB over {v['intervals_only_this_kind']} intervals)")
    return "\n".join(lines)


def format_trend(name: str, trend: dict) -> str:
    """One markdown-ish block: the node, its windows and the fit."""
    lines = [f"{name}:"]
    for w in trend["windows"]:
        lines.append(f"  {w['from_min']:5.1f}-{w['to_min']:5.1f} min  {w['slope_mb_per_min']:+8.3f} MB/min  "
                     f"mean {w['mean_mb']:8.2f}  min {w['min_mb']:8.2f} MB  ({w['samples']} samples)")
    f = trend["fit"]
    if f is not None:
        lines.append(f"  fit from {f['from_min']:g} min: {f['slope_mb_per_min']:+.4f} +- {f['stderr_mb_per_min']:.4f} "
                     f"MB/min ({f['samples']} samples)")
    for name, what in (("peak", "memory flat, the peaks"), ("floor", "floors, diagnostic")):
        v = trend.get(name)
        if v is None:
            lines.append(f"  {name}: too short to judge (fewer than two windows after the warm-up)")
        else:
            lines.append(f"  {name} {v['first_mb']:.2f} -> {v['last_mb']:.2f} MB over {v['span_min']:g} min: "
                         f"{v['rise_mb']:+.2f} MB (allowed {v['allowed_mb']:.2f}): "
                         + ("flat" if v["flat"] else "NOT flat") + f" ({what})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="RSS windows and fit of a bench soak JSON")
    p.add_argument("json")
    p.add_argument("--window-min", type=float, default=5.0)
    p.add_argument("--warmup-min", type=float, default=5.0)
    a = p.parse_args(argv)
    with open(a.json) as f:
        out = json.load(f)
    for key, label in (("memory_mb", "RSS"), ("memory_anon_mb", "anonymous RSS"),
                       ("controller_heap_mb", "C heap, from its /diagnostics"),
                       ("arenas_mb", "malloc arenas resident, from its smaps")):
        for name, m in out.get(key, {}).items():
            if key == "controller_heap_mb":
                name = f"controller {name}"
            print(format_trend(f"{name} ({label})", rss_trend(m["series_s_mb"], a.window_min, a.warmup_min)))
    if out.get("event_times_s"):   # bench soak JSONs from the ninth session on
        for name, m in out.get("memory_anon_mb", {}).items():
            att = attribute(m["series_s_mb"], out["event_times_s"], a.warmup_min)
            if att is not None:
                print(format_attribution(f"{name} (anonymous RSS from {a.warmup_min:g} min)", att))


if __name__ == "__main__":
    main()
