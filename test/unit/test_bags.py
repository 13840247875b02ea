"""dynlearn_ros.bags without ROS: real rosbag2 files written by the rosbags library in both
storage formats (MCAP, sqlite3), read back and aligned; a known-answer alignment test; truncated
and killed bags; missing topics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dynlearn_ros.bags.align import CommandSeries, StateSeries, align, lowpass_causal
from dynlearn_ros.bags.convert import bag_info, bag_to_data, is_bag_path
from dynlearn_ros.bags.reader import open_bag, typestore
from dynlearn_ros.bags.writer import BagWriter
from dynlearn_ros.errors import DataFileError

NAMES = ("j1", "j2", "j3")
M = np.array([2.0, 0.5, 1.5])     # known "inertias" of the synthetic plant (kg m^2)
C = np.array([3.0, 1.0, 0.2])     # known "springs" (N m / rad)
DT = 1e-3                         # s


def plant(n_steps: int, seed: int = 0) -> dict:
    """A synthetic arm with a known answer: qdd_k = (tau_k - C q_k) / M, integrated semi-implicitly
    (qd_{k+1} = qd_k + dt qdd_k, q_{k+1} = q_k + dt qd_{k+1}) with random torques. Log times (ns)
    put each command between its state and the next, at a random point of the period."""
    rng = np.random.default_rng(seed)
    tau = rng.normal(0.0, 1.0, (n_steps, 3))
    q, qd = np.zeros((n_steps + 1, 3)), np.zeros((n_steps + 1, 3))
    for k in range(n_steps):
        qdd = (tau[k] - C * q[k]) / M
        qd[k + 1] = qd[k] + DT * qdd
        q[k + 1] = q[k] + DT * qd[k + 1]
    t0 = 1_700_000_000_000_000_000
    period = 1_000_000
    state_log = t0 + np.arange(n_steps + 1) * period + rng.integers(0, 100_000, n_steps + 1)
    cmd_log = state_log[:-1] + rng.integers(150_000, 850_000, n_steps)
    # effort of state k+1 = the torque applied over the step into it (the sim bridge's convention)
    effort = np.vstack([np.zeros((1, 3)), tau])
    return {"q": q, "qd": qd, "tau": tau, "effort": effort, "stamp": 5.0 + np.arange(n_steps + 1) * DT,
            "state_log": state_log, "cmd_log": cmd_log}


def write_bag(path: Path, storage: str, p: dict, extra_topic: bool = True) -> Path:
    """A rosbag2 of the plant's joint states and commands through the rosbags writer (the same
    CDR the recorder writes)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    ts = typestore()
    JointState = ts.types["sensor_msgs/msg/JointState"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    F64 = ts.types["std_msgs/msg/Float64MultiArray"]
    Layout = ts.types["std_msgs/msg/MultiArrayLayout"]
    String = ts.types["std_msgs/msg/String"]
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as w:
        cs = w.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=ts)
        cc = w.add_connection("/effort_controller/commands", "std_msgs/msg/Float64MultiArray", typestore=ts)
        cx = w.add_connection("/trainer/metrics", "std_msgs/msg/String", typestore=ts) if extra_topic else None
        msgs = []
        for k in range(p["q"].shape[0]):
            sec = int(p["stamp"][k])
            js = JointState(header=Header(stamp=Time(sec=sec, nanosec=int(round((p["stamp"][k] - sec) * 1e9))),
                                          frame_id=""),
                            name=list(NAMES), position=p["q"][k], velocity=p["qd"][k], effort=p["effort"][k])
            msgs.append((int(p["state_log"][k]), cs, ts.serialize_cdr(js, "sensor_msgs/msg/JointState")))
        for k in range(p["tau"].shape[0]):
            msg = F64(layout=Layout(dim=[], data_offset=0), data=p["tau"][k])
            msgs.append((int(p["cmd_log"][k]), cc, ts.serialize_cdr(msg, "std_msgs/msg/Float64MultiArray")))
        if cx is not None:
            msgs.append((int(p["state_log"][0]), cx, ts.serialize_cdr(String(data="{}"), "std_msgs/msg/String")))
        for t, conn, raw in sorted(msgs, key=lambda m: m[0]):
            w.write(conn, t, raw)
    return path


def residual(data) -> np.ndarray:
    """tau - (M qdd + C q): zero for rows paired right."""
    return data.tau - (M * data.qdd + C * data.q)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_round_trip_both_storages_known_answer(tmp_path, storage):
    p = plant(600)
    bag = write_bag(tmp_path / f"run_{storage}", storage, p)
    assert is_bag_path(bag) and is_bag_path(bag / "metadata.yaml")
    info = bag_info(bag)
    assert info["storage"] == storage and info["complete"]
    assert info["topics"]["/joint_states"] == {"type": "sensor_msgs/msg/JointState", "count": 601}
    assert info["topics"]["/effort_controller/commands"]["count"] == 600
    data = bag_to_data(bag)
    # 601 states give 600 pairs, each with its command
    assert len(data) == 600 and data.joint_names == NAMES and data.dt == pytest.approx(DT)
    np.testing.assert_allclose(data.q, p["q"][:-1], rtol=0, atol=0)
    np.testing.assert_allclose(data.tau, p["tau"], rtol=0, atol=0)
    # qdd from velocity differences: float64 round-off of (qd_{k+1} - qd_k) / dt with |qd| < 1
    # is ~1e-16 / 1e-3 = 1e-13 rad/s^2; times M <= 2 -> well below 1e-9 N m
    assert np.abs(residual(data)).max() < 1e-9
    assert data.meta["alignment"]["counts"]["held"] == 0
    assert data.meta["alignment"]["rows_command_equals_next_effort"] == 1.0
    # the single storage file reads the same as the folder
    single = next(bag.glob("*.mcap" if storage == "mcap" else "*.db3"))
    np.testing.assert_array_equal(bag_to_data(single).tau, data.tau)


def test_alignment_one_sample_shift_fails():
    """The known answer holds for the right pairing and is broken by a one-sample shift of the
    commands against the states (each command logged one period later)."""
    p = plant(400, seed=3)
    states = StateSeries(p["stamp"], p["state_log"], p["q"], p["qd"], p["effort"], NAMES)
    good = align(states, CommandSeries(p["cmd_log"], p["tau"]))
    assert np.abs(residual(good)).max() < 1e-9
    shifted = align(states, CommandSeries(p["cmd_log"] + 1_000_000, p["tau"]))
    # tau_{k-1} used for tau_k: the residual is tau_k - tau_{k-1}, std sqrt(2) N m for unit
    # random torques; its largest value over ~400 rows is far above 0.5
    assert np.abs(residual(shifted)).max() > 0.5
    assert shifted.meta["alignment"]["rows_command_equals_next_effort"] < 0.01
    # effort as the torque source gives the same rows as the commands, without log times
    by_effort = align(states, None, torque_source="effort")
    np.testing.assert_array_equal(by_effort.tau, good.tau)


def test_gaps_start_episodes_and_held_commands_are_counted():
    p = plant(300, seed=1)
    keep = np.ones(301, dtype=bool)
    keep[100:103] = False                     # three states lost: a gap of 4 periods
    cmd_keep = np.ones(300, dtype=bool)
    cmd_keep[200] = False                     # one command lost: row 200 uses the held one
    states = StateSeries(p["stamp"][keep], p["state_log"][keep], p["q"][keep], p["qd"][keep], None, NAMES)
    cmds = CommandSeries(p["cmd_log"][cmd_keep], p["tau"][cmd_keep])
    kept = align(states, cmds, keep_held=True)
    counts = kept.meta["alignment"]["counts"]
    assert counts["gaps"] == 1 and counts["held"] == 1 and counts["episodes"] == 2
    assert len(kept) == 300 - 4               # 4 pairs touch a lost state (99->103 is one gap row)
    assert kept.t[0] == 0.0 and np.isclose(kept.t[np.flatnonzero(kept.episode == 1)[0]], 0.0)
    bad = np.abs(residual(kept)).max(axis=1) > 1e-9
    assert bad.sum() == 1                     # the held-command row misses the answer (the command was lost)
    data = align(states, cmds)                # default: that row is dropped, every row is right
    assert len(data) == 300 - 5 and data.meta["alignment"]["counts"]["episodes"] == 3
    assert np.abs(residual(data)).max() < 1e-9


def test_lowpass_causal_is_causal_and_passes_dc():
    x = np.zeros((200, 1))
    x[100:] = 1.0
    y = lowpass_causal(x, DT, 20.0)
    assert np.all(y[:100] == 0.0)            # nothing before the step: causal
    assert abs(y[-1, 0] - 1.0) < 1e-3        # unit DC gain once settled (100 ms >> 1/20 Hz)
    const = lowpass_causal(np.full((50, 2), 3.0), DT, 20.0)
    np.testing.assert_allclose(const, 3.0, atol=1e-12)   # started from the first value: no transient


def test_missing_topic_is_a_clear_error(tmp_path):
    p = plant(50)
    bag = write_bag(tmp_path / "b", "mcap", p)
    with pytest.raises(DataFileError, match=r"/wrong_states is not in the bag; its topics: .*/joint_states"):
        bag_to_data(bag, states_topic="/wrong_states")
    with pytest.raises(DataFileError, match="topic /nope/commands is not in the bag"):
        bag_to_data(bag, commands_topic="nope/commands")
    # a bag with states only: the default commands topic is missing, and the error says how to pick one
    from rosbags.rosbag2 import StoragePlugin, Writer
    only = tmp_path / "only_states"
    with Writer(only, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        w.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=typestore())
    with pytest.raises(DataFileError, match=r"no commands topic .*effort_controller/commands.*--commands-topic"):
        bag_to_data(only)


def test_zstd_chunks_read_whole_and_cut(tmp_path):
    """MCAP with zstd-compressed chunks (what ros2 bag record's MCAP storage writes by default):
    read whole by rosbags, and cut: the salvage decompresses the complete chunks."""
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

    ts = typestore()
    S = ts.types["std_msgs/msg/String"]
    path = tmp_path / "z"
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    w.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with w:
        c = w.add_connection("/chatter", "std_msgs/msg/String", typestore=ts)
        for k in range(60000):   # ~4 MB of records: several 1 MiB chunks
            w.write(c, 1_000_000 + k, ts.serialize_cdr(S(data=f"message number {k:08d}"), "std_msgs/msg/String"))
    bag = open_bag(path)
    assert bag.complete and bag.topics["/chatter"].count == 60000
    src = next(path.glob("*.mcap")).read_bytes()
    cut = tmp_path / "zcut.mcap"
    cut.write_bytes(src[: len(src) * 2 // 3])
    part = open_bag(cut)
    got = [m.data for _, m in part.decoded("/chatter")]
    assert not part.complete and 0 < len(got) < 60000
    assert got == [f"message number {k:08d}" for k in range(len(got))]


def test_truncated_bags_never_crash(tmp_path):
    """Cut a finished MCAP at many sizes: each read is a DataFileError or a partial read whose
    joint states are a prefix of the recording, flagged incomplete."""
    p = plant(3000, seed=2)
    bag = write_bag(tmp_path / "full", "mcap", p)
    src = next(bag.glob("*.mcap")).read_bytes()
    outcomes = {"error": 0, "partial": 0}
    for frac in (0.0, 0.001, 0.05, 0.3, 0.5, 0.77, 0.95, 0.999):
        cut = tmp_path / f"cut_{frac}.mcap"
        cut.write_bytes(src[: int(len(src) * frac)])
        try:
            b = open_bag(cut)
        except DataFileError as exc:
            assert str(cut) in str(exc)
            outcomes["error"] += 1
            continue
        assert b.problem
        n = b.topics["/joint_states"].count if "/joint_states" in b.topics else 0
        assert n == 3001 or not b.complete     # "complete": every data record was read
        assert n <= 3001
        if n:
            stamps = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for _, m in b.decoded("/joint_states")]
            np.testing.assert_allclose(stamps, p["stamp"][:n], rtol=0, atol=1e-9)   # a prefix, in order
        outcomes["partial"] += 1
    assert outcomes["error"] >= 1 and outcomes["partial"] >= 1
    # A sqlite3 file cut in half: an error naming it, or what sqlite can still read
    sq = write_bag(tmp_path / "sq", "sqlite3", p)
    db = next(sq.glob("*.db3"))
    cut = tmp_path / "cut.db3"
    cut.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    try:
        b = open_bag(cut)
        assert b.topics.get("/joint_states") is None or b.topics["/joint_states"].count <= 3001
    except DataFileError as exc:
        assert "cut.db3" in str(exc)
    # not a bag at all
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"hello world" * 10)
    with pytest.raises(DataFileError, match="junk.mcap"):
        open_bag(junk)
    with pytest.raises(DataFileError, match="no such bag"):
        open_bag(tmp_path / "absent.mcap")


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    import numpy as np
    from dynlearn_ros.bags.reader import typestore
    from dynlearn_ros.bags.writer import BagWriter
    ts = typestore()
    F64 = ts.types["std_msgs/msg/Float64MultiArray"]
    Layout = ts.types["std_msgs/msg/MultiArrayLayout"]
    w = BagWriter(sys.argv[1], sys.argv[2], chunk_period_s=0.2, poll_s=0.01)
    i = w.add_topic("/counter", "std_msgs/msg/Float64MultiArray")
    k = 0
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:      # ~1.5 s at ~1 kHz: several 0.2 s chunks
        w.push(i, time.time_ns(), ts.serialize_cdr(F64(layout=Layout(dim=[], data_offset=0),
                                                      data=np.array([float(k)])), "std_msgs/msg/Float64MultiArray"))
        k += 1
        time.sleep(0.001)
    print(k, time.time_ns(), w.flushes, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_writer_killed_loses_at_most_the_last_chunk(tmp_path, storage):
    """A real SIGKILL of a process writing through BagWriter: the folder has no metadata.yaml (and
    the MCAP no summary); everything but the chunk being filled (sqlite3: the open transaction)
    reads, in order."""
    path = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    out = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(path), storage], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == -signal.SIGKILL, out.stderr
    pushed, t_kill, flushes = (int(v) for v in out.stdout.split())
    assert flushes >= 3
    assert not (path / "metadata.yaml").exists()
    bag = open_bag(path)
    assert not bag.complete and ("summary" in bag.problem if storage == "mcap" else "metadata.yaml" in bag.problem)
    got = [int(m.data[0]) for _, m in bag.decoded("/counter")]
    assert got == list(range(len(got)))          # a gap-free prefix
    last_ns = bag.messages["/counter"][-1][0]
    # lost: what was pushed after the last flush; a flush happens every 0.2 s (+ one 10 ms poll),
    # so at most ~0.21 s of messages are lost; 0.5 s allows for a busy machine delaying the writer
    assert (t_kill - last_ns) * 1e-9 < 0.5, (pushed, len(got))
    assert len(got) < pushed or flushes == 0


def test_writer_close_gives_a_complete_bag(tmp_path):
    w = BagWriter(tmp_path / "ok", "sqlite3", chunk_period_s=0.05)
    ts = typestore()
    i = w.add_topic("/chatter", "std_msgs/msg/String")
    for k in range(100):
        w.push(i, 1_000 + k, ts.serialize_cdr(ts.types["std_msgs/msg/String"](data=f"m{k}"), "std_msgs/msg/String"))
    w.close()
    w.push(i, 5, b"late")                         # after close: counted, not written
    assert w.dropped == 1 and w.counts() == {"/chatter": 100}
    bag = open_bag(tmp_path / "ok")
    assert bag.complete and [m.data for _, m in bag.decoded("/chatter")] == [f"m{k}" for k in range(100)]
    with pytest.raises(ValueError, match="exists already"):
        BagWriter(tmp_path / "ok")
    with pytest.raises(KeyError):
        BagWriter(tmp_path / "x").add_topic("/t", "no_pkg/msg/Nothing")


def test_cli_bag_verbs_and_the_train_data_hook(tmp_path, capsys):
    """`dynlearn-ros bag info | to-npz` and `train --data run.mcap` on a single MCAP file."""
    from dynlearn_ros.cli import main
    from dynlearn_ros.datasets.format import load_npz

    p = plant(400, seed=4)
    folder = write_bag(tmp_path / "run", "mcap", p)
    mcap = next(folder.glob("*.mcap"))
    assert main(["bag", "info", str(mcap)]) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "/joint_states" in out and "401" in out
    assert main(["bag", "to-npz", str(folder), str(tmp_path / "run.npz")]) == 0
    data = load_npz(tmp_path / "run.npz")
    assert len(data) == 400 and data.meta["bag"]["states_topic"] == "/joint_states"
    assert np.abs(residual(data)).max() < 1e-9
    # a missing topic through the CLI: exit 2 with one line naming it
    assert main(["bag", "to-npz", str(folder), str(tmp_path / "x.npz"), "--states-topic", "/arm/joint_states"]) == 2
    assert "/arm/joint_states is not in the bag" in capsys.readouterr().err
    # train --data run.mcap: converted next to the run, then trained (a one-epoch FFNN: the hook,
    # not the model, is under test)
    run = tmp_path / "ffnn"
    assert main(["train", "--data", str(mcap), "--model", "ffnn", "--epochs", "1", "--window", "20",
                 "--no-progress", "--out", str(run)]) == 0
    assert (run / "bag_data.npz").is_file()
    import json
    assert json.loads((run / "train.json").read_text())["data"] == str(run / "bag_data.npz")


def test_launch_record_argument_adds_the_recorder(tmp_path):
    from dynlearn_ros.launch_graph import vgain_control

    names = [s.name for s in vgain_control({})]
    assert "recorder" not in names
    specs = vgain_control({"record": "true", "summary_dir": str(tmp_path)})
    rec = specs[0]
    assert rec.name == "recorder" and rec.module == "dynlearn_ros.nodes.recorder" and not rec.required
    params = rec.parameters[0]
    assert params["bag_path"] == str(tmp_path / "bag") and params["summary_path"] == str(tmp_path / "recorder.json")
    # the launch default is lockstep stepping: the recorder keeps niceness 0 there (a complete bag);
    # beside a realtime loop (realtime stepping, a real robot) it keeps its default 19
    assert params["niceness"] == 0
    for args in ({"stepping": "realtime"}, {"use_sim": "false"}):
        rt = vgain_control({"record": "true", "summary_dir": str(tmp_path), **args})
        rec = next(s for s in rt if s.name == "recorder")
        assert "niceness" not in rec.parameters[0], args


def moving_plant(n_steps: int, amplitude: tuple[float, ...], freq_hz: float = 0.5) -> dict:
    """plant()'s stamps and commands with q_j = q0_j + A_j sin(2 pi f t), qd its derivative:
    a known spread per joint (std A/sqrt(2) rad, A 2 pi f/sqrt(2) rad/s over whole periods)."""
    p = plant(n_steps, seed=5)
    t = np.arange(n_steps + 1) * DT
    a = np.asarray(amplitude)[None, :]
    w = 2 * np.pi * freq_hz
    p["q"] = 0.3 + a * np.sin(w * t)[:, None]
    p["qd"] = a * w * np.cos(w * t)[:, None]
    return p


def test_excitation_known_answer():
    """Fallback thresholds (j1..j3 are no robot's): q std >= 0.04 rad and qd std >= 0.05 rad/s.
    A = 0.1 rad at 0.5 Hz: q std 0.071, qd std 0.22 (both pass by a factor >= 1.7); A = 0.02:
    q std 0.014 (< 0.04, fails although its qd std 0.044 is near the bar); A = 0: constant."""
    from dynlearn_ros.bags.excitation import Q_FALLBACK, QD_FALLBACK, excitation, warning_line

    p = moving_plant(4000, (0.1, 0.0, 0.02))   # 2 whole periods
    exc = excitation(p["q"], p["qd"], None, NAMES)
    assert exc["limits_from"] == "fallback"
    assert exc["unexcited"] == ["j2", "j3"]
    j1 = exc["joints"][0]
    assert j1["q_std"] == pytest.approx(0.1 / np.sqrt(2), rel=1e-3)   # whole periods: the exact std
    assert j1["q_threshold"] == Q_FALLBACK and j1["qd_threshold"] == QD_FALLBACK
    line = warning_line(exc)
    assert "2 of 3 joints" in line and "j2 (" in line and "j3 (" in line and "j1 (" not in line
    p = moving_plant(4000, (0.1, 0.1, 0.1))
    exc = excitation(p["q"], p["qd"], None, NAMES)
    assert exc["unexcited"] == [] and warning_line(exc) is None
    # a known robot's joint names: thresholds from its range and velocity limit
    from dynlearn_ros.core.robots import robot_spec

    spec = robot_spec("iiwa")
    n = spec.n
    q = np.zeros((10, n))
    exc = excitation(q, q, None, spec.joint_names)
    assert exc["limits_from"] == "iiwa" and len(exc["unexcited"]) == n
    assert [jt["q_threshold"] for jt in exc["joints"]] == pytest.approx(0.01 * (spec.upper - spec.lower))
    assert [jt["qd_threshold"] for jt in exc["joints"]] == pytest.approx(0.02 * spec.velocity_limits)


def test_excitation_through_bag_info_to_npz_and_train(tmp_path, capsys):
    """A bag whose joint j2 stays put: `bag info` and `bag to-npz` name j2 (and only j2), the
    npz's meta holds the figures and `train --data BAG` copies them to train.json."""
    import json

    from dynlearn_ros.cli import main
    from dynlearn_ros.datasets.format import load_npz

    folder = write_bag(tmp_path / "run", "mcap", moving_plant(2000, (0.1, 0.0, 0.1)))
    info = bag_info(folder)
    assert info["excitation"]["unexcited"] == ["j2"]
    assert main(["bag", "info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "WARNING: the data does not excite 1 of 3 joints: j2 (" in out
    assert main(["bag", "to-npz", str(folder), str(tmp_path / "run.npz")]) == 0
    assert "does not excite 1 of 3 joints: j2 (" in capsys.readouterr().out
    data = load_npz(tmp_path / "run.npz")
    assert data.meta["excitation"]["unexcited"] == ["j2"]
    # the refusal is an option: exit 2 naming the joint, nothing written
    assert main(["bag", "to-npz", str(folder), str(tmp_path / "no.npz"), "--require-excitation"]) == 2
    assert "--require-excitation: the data does not excite joints ['j2']" in capsys.readouterr().err
    assert not (tmp_path / "no.npz").exists()
    run = tmp_path / "ffnn"
    assert main(["train", "--data", str(folder), "--model", "ffnn", "--epochs", "1", "--window", "20",
                 "--no-progress", "--out", str(run)]) == 0
    assert json.loads((run / "train.json").read_text())["data_excitation"]["unexcited"] == ["j2"]
    capsys.readouterr()
    # every joint moving: no warning, the verdict line says so
    folder = write_bag(tmp_path / "all", "mcap", moving_plant(2000, (0.1, 0.1, 0.1)))
    assert main(["bag", "to-npz", str(folder), str(tmp_path / "all.npz")]) == 0
    out = capsys.readouterr().out
    assert "WARNING" not in out and "excitation: all 3 joints excited" in out
    assert main(["bag", "to-npz", str(folder), str(tmp_path / "all2.npz"), "--require-excitation"]) == 0
