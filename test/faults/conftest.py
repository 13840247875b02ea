"""The fault matrix under pytest: one ROS domain and one rclpy context for the matrix's module
(the same isolation as test/ros/conftest.py: a claimed ROS_DOMAIN_ID, localhost discovery).
Module scope, not session: the context and the domain end with the matrix, so the ROS tests that
run after it in the same pytest process start their own (a session-wide context kept the
matrix's domain while test/ros started its nodes on another, and they never met)."""

from __future__ import annotations

import os

import pytest

from dynlearn_ros.procs import claim_domain_id


@pytest.fixture(scope="module")
def fault_env(tmp_path_factory):
    import rclpy

    if rclpy.ok() and os.environ.get("ROS_DOMAIN_ID"):
        # rclpy already runs in this session (test/ros claimed a domain and initialised it):
        # the driver lives in that context, so the nodes must join the same domain
        yield dict(os.environ)
        return
    saved = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR")}
    claim = claim_domain_id()
    os.environ.update(claim.env(tmp_path_factory.mktemp("ros_log")))
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    owner = not rclpy.ok()
    if owner:
        rclpy.init()
    yield dict(os.environ)
    if owner:
        rclpy.try_shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    claim.close()
