"""Does the controller's model loader grow the process? (docs/safety.md, "The soak controller's
memory: not the model loader".)

    PYTHONPATH=<tree> .venv/bin/python scripts/slot_load_rss.py [N] [model_dir] [kind]

Loads ``model_dir`` (default models/svdkl_iiwa_sim, the soak's model) N times (default 600, the
24-minute soak loaded 597) the way computed_torque does: :class:`ModelSlot`'s worker thread loads
(``load_inverse_model`` with the iiwa URDF) and checks (``check_model`` at home, 1 ms) each
request, the caller takes the candidate and activates it (the replaced model becomes the
rollback target, the one before it is dropped). Prints the resident set (MB) and the thread count
every 50 loads. No ROS: the soak's other suspects (Fast DDS threads) are not in this process.
"""

from __future__ import annotations

import sys
import time

import psutil

from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.paths import resolve_model_dir
from dynlearn_ros.runtime.registry import load_inverse_model
from dynlearn_ros.runtime.slot import ModelSlot, check_model


def main(n: int = 600, model_dir: str = "svdkl_iiwa_sim", kind: str = "svdkl") -> None:
    """Load ``n`` times through the slot; one line per 50 loads: loads, RSS (MB), threads, s."""
    spec = robot_spec("iiwa")
    path = str(resolve_model_dir(model_dir))
    urdf = str(spec.urdf_path)

    def load(k: str, p: str):
        return load_inverse_model(k, p, spec.joint_names, urdf=urdf)

    def check(m) -> None:
        check_model(m, spec.joint_names, spec.home, 1e-3)

    slot = ModelSlot(load(kind, path), kind, path, load, check)
    proc = psutil.Process()
    t0 = time.monotonic()
    print(f"loads 0 rss_mb {proc.memory_info().rss / 2**20:.1f} threads {proc.num_threads()}", flush=True)
    for i in range(1, n + 1):
        slot.request(kind, path)
        while (cand := slot.take_ready()) is None:
            refused = [e for e in slot.poll() if not e.ok]
            if refused:
                raise SystemExit(f"refused: {refused[0].reason}")
            time.sleep(0.002)
        slot.activated(cand, slot.active.model)
        slot.poll()
        if i % 50 == 0:
            print(f"loads {i} rss_mb {proc.memory_info().rss / 2**20:.1f} threads {proc.num_threads()} "
                  f"t {time.monotonic() - t0:.0f} s", flush=True)
    slot.close()


if __name__ == "__main__":
    main(*(int(a) if i == 0 else a for i, a in enumerate(sys.argv[1:])))
