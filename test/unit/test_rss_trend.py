"""faults/rss_trend.py: the soak's windows and fit tell a flat series from a growing one."""

from __future__ import annotations

import numpy as np

from dynlearn_ros.faults.rss_trend import format_trend, rss_trend


def _series(minutes: float, every_s: float, slope_mb_per_min: float, noise_mb: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, minutes * 60.0, every_s)
    mb = 180.0 + slope_mb_per_min * t / 60.0 + rng.normal(0.0, noise_mb, len(t))
    return np.column_stack([t, mb]).tolist()


def test_flat_series_has_a_fit_within_its_error_and_windows_of_both_signs():
    tr = rss_trend(_series(24, 10, 0.0, 0.3))
    f = tr["fit"]
    # 114 samples after 5 min, sigma 0.3 MB over 19 min: stderr ~0.3 / (19 * sqrt(114 / 12)) ~ 0.005;
    # a true zero lies within 4 of them with probability > 0.9999
    assert abs(f["slope_mb_per_min"]) < 4 * f["stderr_mb_per_min"]
    assert len(tr["windows"]) == 5            # 0-5, 5-10, 10-15, 15-20, 20-24
    assert tr["windows"][-1]["to_min"] < 24.0
    assert len(tr["lowest_per_window_mb"]) == 5


def test_growing_series_is_found_with_its_slope():
    tr = rss_trend(_series(24, 10, 0.1, 0.3))
    f = tr["fit"]
    assert f["from_min"] == 5.0 and f["samples"] == 114
    # 0.1 MB/min against a stderr of ~0.005: within 4 standard errors of the truth, > 10 from 0
    assert abs(f["slope_mb_per_min"] - 0.1) < 4 * f["stderr_mb_per_min"]
    assert f["slope_mb_per_min"] > 10 * f["stderr_mb_per_min"]
    floors = tr["lowest_per_window_mb"]
    assert floors[-1] > floors[1]             # +1.5 MB between them against 0.3 MB noise per sample
    assert "fit from 5 min" in format_trend("controller", tr)


def test_short_series_gives_no_fit_and_no_crash():
    tr = rss_trend([[0.0, 10.0], [10.0, 11.0]])
    assert tr["fit"] is None and tr["windows"] == []
    assert rss_trend([])["fit"] is None
