"""The controller node runs its process at the slot's thread switch interval (runtime/slot.py
CONTROL_SWITCH_INTERVAL_S): with Python's default 5 ms, the tick, back from an onnxruntime run,
waited up to 5 ms for the loading worker to hand the interpreter's lock back, and the loading
window was ~1.4x as often over budget as the no-swap stretch (docs/results_closed_loop.md,
"Session 9")."""

from __future__ import annotations

import sys


def test_the_controller_node_sets_the_slots_switch_interval(ros_context):
    from dynlearn_ros.nodes.computed_torque import ComputedTorqueNode
    from dynlearn_ros.runtime.slot import CONTROL_SWITCH_INTERVAL_S

    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        node = ComputedTorqueNode()
        try:
            assert CONTROL_SWITCH_INTERVAL_S < 0.005
            assert abs(sys.getswitchinterval() - CONTROL_SWITCH_INTERVAL_S) < 1e-9
        finally:
            node.destroy_node()
    finally:
        sys.setswitchinterval(before)
