"""The forward model's varied training data: ``collect_dataset`` with several payloads /
reference bounds, episode e using element e mod their count, gives exactly the episodes that
single-valued calls with the same seed give (the simulation is deterministic, so bitwise)."""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.sim.collect import collect_dataset

FRICTION = {"friction_viscous": 0.3, "friction_coulomb": 0.05}


def _episode(data, e: int) -> dict[str, np.ndarray]:
    rows = data.episode == e
    return {k: getattr(data, k)[rows] for k in ("q", "qd", "tau")}


def test_cycled_payloads_and_bounds_equal_single_valued_runs() -> None:
    mixed = collect_dataset(episodes=3, seconds=0.3, payload_kg=[0.0, 4.0], max_acceleration=[6.0, 6.0, 20.0],
                            seed=5, **FRICTION)
    stats = mixed.meta["episode_stats"]
    assert [s["payload_kg"] for s in stats] == [0.0, 4.0, 0.0]
    assert [s["max_acceleration"] for s in stats] == [6.0, 6.0, 20.0]
    assert mixed.meta["payload_kg"] == [0.0, 4.0]
    light = collect_dataset(episodes=3, seconds=0.3, payload_kg=0.0, seed=5, **FRICTION)
    heavy = collect_dataset(episodes=3, seconds=0.3, payload_kg=4.0, seed=5, **FRICTION)
    fast = collect_dataset(episodes=3, seconds=0.3, payload_kg=0.0, max_acceleration=20.0, seed=5, **FRICTION)
    for e, ref in ((0, light), (1, heavy), (2, fast)):
        got, want = _episode(mixed, e), _episode(ref, e)
        for k in got:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"episode {e} {k}")
    # the payload really changed the plant: 4 kg is 39 N at the flange, > 1 N*m on a joint whose lever
    # is > 3 cm (joint 2 at the home pose: ~0.5 m), which the PD part of the command answers
    assert np.max(np.abs(_episode(mixed, 1)["tau"] - _episode(light, 1)["tau"])) > 1.0


def test_empty_list_refused() -> None:
    with pytest.raises(ValueError, match="payload_kg"):
        collect_dataset(episodes=1, seconds=0.1, payload_kg=[])
