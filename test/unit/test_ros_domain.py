"""procs.ros_domain: the one place that claims a ROS domain for this process and restores the
environment (used by test/ros, the fault matrix per row, the soak run)."""

from __future__ import annotations

import os

import pytest

from dynlearn_ros.procs import claim_domain_id, ros_domain


def test_sets_the_domain_and_restores_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", "0")
    monkeypatch.setenv("ROS_LOCALHOST_ONLY", "1")
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    with ros_domain(tmp_path / "log") as env:
        d = int(os.environ["ROS_DOMAIN_ID"])
        assert env["ROS_DOMAIN_ID"] == str(d) and 1 <= d <= 100
        assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
        assert "ROS_LOCALHOST_ONLY" not in os.environ and "ROS_LOCALHOST_ONLY" not in env
        assert os.environ["ROS_LOG_DIR"] == str(tmp_path / "log") and (tmp_path / "log").is_dir()
        # the domain is held: a claim scanning from it gets another one
        with claim_domain_id(start=d - 1) as other:
            assert other.domain != d
    assert os.environ["ROS_DOMAIN_ID"] == "0"
    assert os.environ["ROS_LOCALHOST_ONLY"] == "1"
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE" not in os.environ
    # released: the same domain can be claimed again (other test processes scan from their own
    # pid, so one taking exactly d in this gap is unlikely)
    with claim_domain_id(start=d - 1) as again:
        assert again.domain == d


def test_restores_after_an_exception_and_nests(tmp_path, monkeypatch):
    monkeypatch.delenv("ROS_DOMAIN_ID", raising=False)
    with pytest.raises(RuntimeError), ros_domain(tmp_path / "a"):
        outer = os.environ["ROS_DOMAIN_ID"]
        with ros_domain(tmp_path / "b") as inner:   # a fault row inside a test/ros session
            assert inner["ROS_DOMAIN_ID"] != outer
        assert os.environ["ROS_DOMAIN_ID"] == outer
        raise RuntimeError("row failed")
    assert "ROS_DOMAIN_ID" not in os.environ
