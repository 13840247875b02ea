"""QoS profiles and topic names shared by the nodes and their peers, named once (DESIGN.md practice 8)."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

#: effort commands and trajectory references: reliable, only the latest matters
COMMANDS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: ~/status rows: best effort (a lost row is only a lost plot point)
STATUS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
#: model announcements (std_msgs/String: a model directory): reliable, transient-local, depth 1,
#: so a controller started after the trainer still gets the latest model
MODEL_UPDATES = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
MODEL_UPDATES_TOPIC = "model_updates"
SENSOR_DATA = qos_profile_sensor_data
