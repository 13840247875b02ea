"""A bag in the layout `ros2 bag record` (rosbag2, ROS 2 Kilted, MCAP storage) writes, read by
`dynlearn-ros bag info | to-npz | train`.

`ros2 bag` is not installable here (rosbag2_py needs C++ builds; ../shared/ros2-tools has no
rosbag2), so the bag is written with the `rosbags` library and then laid out as rosbag2's
recorder lays it out (rosbag2_storage's metadata writer and rosbag2_storage_mcap), where that
differs from what `rosbags` writes by itself:

* the storage files are ``<bag>_0.mcap``, ``<bag>_1.mcap``, ... (split by ``--max-bag-size`` /
  ``--max-bag-duration``), listed in ``relative_file_paths`` and ``files`` (per-file start,
  duration, count), not one ``<bag>.mcap``;
* ``metadata.yaml`` version 9 with ``ros_distro: kilted``, ``compression_format: ""``,
  ``compression_mode: ""``, every topic's ``offered_qos_profiles`` (the publishers' QoS, a YAML
  list) and ``type_description_hash`` (``RIHS01_...``), ``custom_data: ~``;
* MCAP chunks zstd-compressed (the MCAP library's default, which rosbag2_storage_mcap keeps);
* the bag time of a message is its receive time, so a command may be logged after the state
  that follows it (``--torque-source effort`` is the alignment for such bags).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_bags import DT, NAMES, plant, residual, write_bag

from dynlearn_ros.bags.convert import bag_info, bag_to_data
from dynlearn_ros.bags.reader import open_bag, typestore


def offered_qos():
    """What `ros2 bag record` stores per publisher (Kilted, a reliable volatile publisher as the
    sim bridge's): history and depth unknown to the reader (UNKNOWN, 0), infinite durations."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    inf = QosTime(9223372036, 854775807)
    return [Qos(QosHistory.UNKNOWN, 0, QosReliability.RELIABLE, QosDurability.VOLATILE, inf, inf,
                QosLiveliness.AUTOMATIC, inf, False)]


def _write_part(path: Path, msgs: list[tuple[int, str, str, bytes]]) -> Path:
    """One rosbag2 storage file of ``msgs`` (log time ns, topic, type, CDR) through rosbags, zstd
    chunks; each channel carries the publishers' QoS as rosbag2_storage_mcap writes it."""
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

    ts = typestore()
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    w.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    conns = {}
    with w:
        for t, topic, msgtype, raw in msgs:
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msgtype, typestore=ts, offered_qos_profiles=offered_qos())
            w.write(conns[topic], t, raw)
    return next(path.glob("*.mcap"))


def ros2_bag_record_layout(src: Path, dst: Path, n_files: int = 2) -> Path:
    """Re-lay the messages of bag ``src`` out as `ros2 bag record -s mcap --max-bag-size ...`
    would: ``dst/metadata.yaml`` + ``dst/<name>_0.mcap`` .. ``_{n_files-1}.mcap``."""
    bag = open_bag(src)
    msgs = sorted((t, topic, bag.topics[topic].msgtype, raw)
                  for topic in bag.topics for t, raw in bag.messages[topic])
    dst.mkdir()
    scratch = dst.parent / (dst.name + "_scratch")
    files, topic_counts = [], {}
    bounds = np.linspace(0, len(msgs), n_files + 1).astype(int)
    for i in range(n_files):
        part = msgs[bounds[i]:bounds[i + 1]]
        mcap = _write_part(scratch / f"p{i}", part)
        name = f"{dst.name}_{i}.mcap"
        shutil.move(str(mcap), dst / name)
        files.append({"path": name, "starting_time": {"nanoseconds_since_epoch": part[0][0]},
                      "duration": {"nanoseconds": part[-1][0] - part[0][0]}, "message_count": len(part)})
        for _, topic, msgtype, _ in part:
            topic_counts[(topic, msgtype)] = topic_counts.get((topic, msgtype), 0) + 1
    shutil.rmtree(scratch)
    from rosbags.rosbag2.metadata import dump_qos_v9

    qos = dump_qos_v9(offered_qos())     # version 9: a YAML list with enum names
    meta = {"rosbag2_bagfile_information": {
        "version": 9, "storage_identifier": "mcap",
        "duration": {"nanoseconds": msgs[-1][0] - msgs[0][0]},
        "starting_time": {"nanoseconds_since_epoch": msgs[0][0]},
        "message_count": len(msgs),
        "topics_with_message_count": [
            {"topic_metadata": {"name": topic, "type": msgtype, "serialization_format": "cdr",
                                "offered_qos_profiles": qos, "type_description_hash": "RIHS01_" + "0" * 64},
             "message_count": count}
            for (topic, msgtype), count in sorted(topic_counts.items())],
        "compression_format": "", "compression_mode": "",
        "relative_file_paths": [f["path"] for f in files], "files": files,
        "custom_data": None, "ros_distro": "kilted"}}
    (dst / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return dst


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[dict, Path]:
    """The known-answer plant of test_bags, logged with receive times: a third of the commands
    arrive after the state that follows them (the state's log time is its send time + up to 0.9 ms)."""
    p = plant(900, seed=7)
    rng = np.random.default_rng(3)
    late = rng.random(p["tau"].shape[0]) < 0.33
    p["cmd_log"] = np.where(late, p["state_log"][1:] + rng.integers(1_000, 200_000, late.size), p["cmd_log"])
    tmp_path = tmp_path_factory.mktemp("ros2_layout")
    src = write_bag(tmp_path / "src", "mcap", p)
    return p, ros2_bag_record_layout(src, tmp_path / "rosbag2_2026_12_01-12_00_00")


def test_layout_is_rosbag2s(recorded):
    _, bag = recorded
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert sorted(p.name for p in bag.iterdir()) == sorted(["metadata.yaml", f"{bag.name}_0.mcap",
                                                            f"{bag.name}_1.mcap"])
    assert meta["relative_file_paths"] == [f"{bag.name}_0.mcap", f"{bag.name}_1.mcap"]
    assert sum(f["message_count"] for f in meta["files"]) == meta["message_count"]
    # chunks really zstd: the MCAP chunk record names its compression
    assert b"zstd" in (bag / f"{bag.name}_0.mcap").read_bytes()


def test_bag_info_reads_both_files(recorded, capsys):
    from dynlearn_ros.cli import main

    p, bag = recorded
    info = bag_info(bag)
    assert info["storage"] == "mcap" and info["complete"]
    assert info["topics"]["/joint_states"]["count"] == p["q"].shape[0]          # 901: both files
    assert info["topics"]["/effort_controller/commands"]["count"] == p["tau"].shape[0]
    assert main(["bag", "info", str(bag)]) == 0
    out = capsys.readouterr().out
    assert "/joint_states" in out and str(p["q"].shape[0]) in out


def test_to_npz_effort_exact_and_command_by_receive_time_not(recorded, tmp_path):
    from dynlearn_ros.cli import main
    from dynlearn_ros.datasets.format import load_npz

    p, bag = recorded
    out = tmp_path / "eff.npz"
    assert main(["bag", "to-npz", str(bag), str(out), "--torque-source", "effort"]) == 0
    data = load_npz(out)
    assert len(data) == p["tau"].shape[0] and data.joint_names == NAMES and data.dt == pytest.approx(DT)
    np.testing.assert_array_equal(data.tau, p["tau"])
    assert np.abs(residual(data)).max() < 1e-9        # the known answer, as test_bags reasons
    # by receive time, a late command is taken for the next row: rows are dropped (held) or wrong,
    # which is why the docs say `--torque-source effort` for such bags
    by_cmd = bag_to_data(bag)
    wrong = len(by_cmd) < len(data) or np.abs(residual(by_cmd)).max() > 1e-6
    assert wrong


def test_train_from_the_rosbag2_folder(recorded, tmp_path):
    from dynlearn_ros.cli import main

    _, bag = recorded
    run = tmp_path / "ffnn"
    assert main(["bag", "train", str(bag), "--torque-source", "effort", "--model", "ffnn", "--epochs", "1",
                 "--window", "20", "--no-progress", "--out", str(run)]) == 0
    summary = json.loads((run / "train.json").read_text())
    assert Path(summary["data"]).is_file()


def test_metadata_that_disagrees_with_the_files_is_reported_not_read_as_empty(recorded, tmp_path):
    """rosbags skips a storage channel whose QoS differs from metadata.yaml's entry: the bag then
    reads short; it must say so (complete False, the topic and counts named), not look empty."""
    _, bag = recorded
    copy = tmp_path / "disagree"
    shutil.copytree(bag, copy)
    meta = yaml.safe_load((copy / "metadata.yaml").read_text())
    for entry in meta["rosbag2_bagfile_information"]["topics_with_message_count"]:
        entry["topic_metadata"]["offered_qos_profiles"][0]["reliability"] = "best_effort"
    (copy / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    b = open_bag(copy)
    assert not b.complete and "/joint_states: 901 listed, 0 read" in b.problem
