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


def _floors(floors_mb, samples=30):
    """Windows of 5 min from 0 whose lowest values are ``floors_mb`` (every sample 0.5 MB above the
    floor but one): a saw-tooth above a given floor."""
    out = []
    for k, f in enumerate(floors_mb):
        for i in range(samples):
            out.append([(5.0 * k + i * 10.0 / 60.0) * 60.0, f if i == samples // 2 else f + 0.5])
    return out


def test_floor_verdict_passes_noise_and_a_bounded_saw_tooth():
    # 0-5 is the warm-up (+5 MB there does not count); floors after it within 0.2 MB + 0.02 x 10 min
    v = rss_trend(_floors([70.0, 75.0, 75.3, 75.35]))["floor"]
    assert v["span_min"] == 10.0 and abs(v["rise_mb"] - 0.35) < 1e-9
    assert abs(v["allowed_mb"] - 0.4) < 1e-9 and v["flat"]


def test_floor_verdict_fails_a_rising_floor_and_names_it():
    # the shipped soak of the eighth session: the floor rose ~1.1 MB in 10 minutes
    tr = rss_trend(_floors([70.0, 73.7, 74.2, 74.8]))
    v = tr["floor"]
    assert not v["flat"] and v["rise_mb"] > v["allowed_mb"]
    assert "NOT flat" in format_trend("controller", tr)


def test_floor_verdict_needs_two_windows_after_the_warm_up_and_drops_a_short_last_one():
    assert rss_trend(_floors([70.0, 75.0]))["floor"] is None          # a 10-minute soak: no verdict
    # a last window of 1 minute (6 samples) is left out: the verdict is 5-10 against 10-15
    s = _floors([70.0, 75.0, 75.1]) + [[(15.0 + i / 6.0) * 60.0, 80.0] for i in range(6)]
    v = rss_trend(s)["floor"]
    assert v["span_min"] == 5.0 and v["flat"]
    assert "too short" in format_trend("bridge", rss_trend(_floors([70.0])))


def test_attribute_finds_the_event_kind_the_rss_grows_with():
    # samples every 10 s for 20 min; "bad_states" events add 8 kB each, "model" events nothing;
    # 1 kB of noise per sample (a page is 4 kB: the real series moves in such steps)
    from dynlearn_ros.faults.rss_trend import attribute, format_attribution

    rng = np.random.default_rng(1)
    t = np.arange(0.0, 1200.0, 10.0)
    bursts = np.sort(rng.uniform(0.0, 1200.0, 200))
    models = np.sort(rng.uniform(0.0, 1200.0, 60))
    mb = 80.0 + 0.008 * np.searchsorted(bursts, t) + rng.normal(0.0, 0.001, len(t))
    att = attribute(np.column_stack([t, mb]), {"bad_states": bursts.tolist(), "model": models.tolist(), "payload": []})
    b, m = att["bad_states"], att["model"]
    assert "payload" not in att                       # never sent: no column
    # ~170 events after 5 min against 1.4 kB of noise per interval: stderr ~0.15 kB; 5 of them
    assert abs(b["kb_per_event"] - 8.0) < 5 * b["stderr_kb"] + 0.1 and b["stderr_kb"] < 1.0
    assert abs(m["kb_per_event"]) < 5 * m["stderr_kb"] + 0.1
    assert abs(att["quiet"]["kb_per_interval"]) < 5 * att["quiet"]["stderr_kb"] + 0.1
    assert "bad_states" in format_attribution("bridge", att)
    assert attribute(np.column_stack([t[:3], mb[:3]]), {"model": models.tolist()}) is None


def _saw_tooth(leak_mb_per_min, floor_rise_mb=0.0, minutes=20.0, period_min=4.0, amplitude_mb=1.5):
    """Samples every 10 s: 80 MB + a saw-tooth (a load takes ``amplitude_mb`` and gives it back
    over ``period_min``) whose floor rises by ``floor_rise_mb`` over the run towards its level peak
    (a shrinking amplitude: the allocator reusing what it keeps), plus a leak of ``leak_mb_per_min``."""
    t = np.arange(0.0, minutes * 60.0, 10.0)
    phase = (t / 60.0 % period_min) / period_min
    shrink = 1.0 - floor_rise_mb / amplitude_mb * t / t[-1]
    return np.column_stack([t, 80.0 + amplitude_mb * (1.0 - shrink * phase) + leak_mb_per_min * t / 60.0])


def test_peak_verdict_passes_a_saw_tooth_with_level_peaks_and_fails_a_leak_under_it():
    # the ninth session's controller with --burst-publisher-only: floors up 1.2 MB, peaks level
    tr = rss_trend(_saw_tooth(0.0, floor_rise_mb=1.2))
    assert not tr["floor"]["flat"] and tr["peak"]["flat"]
    assert abs(tr["peak"]["rise_mb"]) < 0.05
    assert "flat (memory flat, the peaks)" in format_trend("controller", tr)
    # the same saw-tooth with a leak of 0.1 MB/min (48 MB a shift): the peaks rise ~1 MB in 10 min
    tr = rss_trend(_saw_tooth(0.1))
    assert not tr["peak"]["flat"] and tr["peak"]["rise_mb"] > tr["peak"]["allowed_mb"]
    # a leak at the allowed rate's order (0.02 MB/min) under the saw-tooth stays within 0.2 MB + 0.2 MB
    assert rss_trend(_saw_tooth(0.02))["peak"]["flat"]
