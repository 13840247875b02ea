"""A model slot imports what loading a model needs when it is built, in the building thread, so
the worker never imports (a first import of onnx in the worker held the GIL for ~1 s of CPU,
ml_dtypes registering its ufunc loops: the controller's main thread waited for it mid-run and at
shutdown, > 30 s at load 14). Checked in a fresh interpreter on the shipped models: after the
slot is built, loading and checking an SVDKL and an ac-RKN model in its worker adds no module."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import sys, threading
from dynlearn_ros.core.inverse_model import InverseModel
from dynlearn_ros.paths import resolve_model_dir
from dynlearn_ros.runtime.registry import load_inverse_model
from dynlearn_ros.runtime.slot import ModelSlot

class Still(InverseModel):
    kind = "analytic"
    def predict(self, query, mean_out, std_out):
        return False

assert "onnx" not in sys.modules and "ml_dtypes" not in sys.modules, "imported before the slot"
names = tuple(f"lbr_iiwa_joint_{i}" for i in range(1, 8))
seen = {}
def loader(kind, path):
    before = set(sys.modules)
    model = load_inverse_model(kind, resolve_model_dir(path), names)
    seen[kind] = sorted(set(sys.modules) - before)
    return model

done = threading.Event()
slot = ModelSlot(Still(names), "analytic", "", loader, check=lambda m: None)
for kind, path in (("svdkl", "svdkl_iiwa_sim"), ("acrkn", "acrkn_iiwa_sim")):
    slot.request(kind, path)
    for _ in range(600):
        if kind in seen and not slot.loading:
            break
        threading.Event().wait(0.05)
slot.close(5.0)
print(seen)
assert set(seen) == {"svdkl", "acrkn"}, seen
assert all(not new for new in seen.values()), seen
"""


def test_a_slot_imports_the_model_runtime_when_built_not_in_its_worker():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.stdout, out.stderr)
