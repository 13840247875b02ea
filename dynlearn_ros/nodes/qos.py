"""QoS profiles and topic names shared by the nodes and their peers, named once (DESIGN.md practice 8).

Each topic's QoS (the computed_torque node; docs in README.md, Topics):

| topic | QoS | overridable |
|---|---|---|
| joint_states (subscription) | reliable, keep last 1 (``state_qos:=sensor_data``: best effort, depth 5) | yes |
| effort_controller/commands | reliable, keep last 1 | yes |
| reference_trajectory (subscription) | reliable, keep last 1 | yes |
| model_updates (subscription) | reliable, transient local, keep last 1 | yes |
| ~/status | best effort, keep last 1 | yes |
| /diagnostics | reliable, keep last 10 (the ROS default: diagnostic_aggregator's) | no |
| predictor: joint_states (subscription) | reliable, keep last 1000 | yes |
| predictor: ~/prediction, ~/prediction_std | best effort, keep last 1 | yes |

"Overridable": rclpy's standard QoS overrides, read at start-up (read-only after), by the resolved
topic name (after namespace and remapping), e.g. in a parameter file

    /**/computed_torque:
      ros__parameters:
        qos_overrides:
          /joint_states:
            subscription: {reliability: best_effort, depth: 5}

or ``-p "qos_overrides./joint_states.subscription.reliability:=best_effort"``. The policies:
reliability, durability, history, depth (:func:`overridable`).
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions, QoSPolicyKind

#: effort commands and trajectory references: reliable, only the latest matters
COMMANDS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: ~/status rows: best effort (a lost row is only a lost plot point)
STATUS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
#: model announcements (std_msgs/String: a model directory): reliable, transient-local, depth 1,
#: so a controller started after the trainer still gets the latest model
MODEL_UPDATES = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
MODEL_UPDATES_TOPIC = "model_updates"
#: the predictor's ~/prediction and ~/prediction_std: best effort, only the latest forecast matters
PREDICTIONS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
#: joint_states for a node that needs every state (the predictor's belief): reliable, keep last
#: 1000 (1 s at 1 kHz: a CPU-starved node catches up instead of losing the oldest; with 50 the
#: loaded bench lost 3x more gaps of states, docs/predictor.md "Cost at 1 kHz input")
STATE_STREAM = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: publishers of joint_states and effort commands: reliable, transient local, keep last 1000 (1 s
#: at 1 kHz). A keep-last writer never blocks, so the control loop is unchanged; the history is
#: what a reliable reader that was off the CPU (the recorder, the predictor) can still get
#: repaired, and transient local hands it to a recorder whose reader matched late (the first
#: steps of a run); volatile readers (the controller, the bridge) get only new messages, as before.
#: Subscriptions keep their own QoS (COMMANDS, STATE_STREAM); docs/bags.md.
STREAM_PUBLISHER = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
SENSOR_DATA = qos_profile_sensor_data
#: ik/target and ik/chain_target (the ik node's requests): reliable, keep last 10, so targets sent
#: while a solve holds the node (0.1-10 s) wait in the queue instead of being dropped
IK_TARGETS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: /diagnostics: the ROS default (reliable, volatile, keep last 10), what diagnostic_aggregator expects
DIAGNOSTICS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


def overridable() -> QoSOverridingOptions:
    """rclpy's QoS overrides for reliability, durability, history and depth (parameters
    ``qos_overrides.<resolved topic>.<publisher|subscription>.<policy>``, read-only at run time)."""
    return QoSOverridingOptions(policy_kinds=(QoSPolicyKind.RELIABILITY, QoSPolicyKind.DURABILITY,
                                              QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH))
