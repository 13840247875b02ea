"""The variance-scheduled closed-loop comparison (issue 4, section 4), as plain Python.

For each configuration of ``config/scenario_vgain.yaml`` (a: fixed high gains + analytic model,
b: fixed low gains + analytic, c: scheduled gains + SVDKL, d: scheduled gains + ac-RKN-inv) this
starts three node processes on one isolated ROS graph - ``sim_bridge`` (lockstep, the iiwa with
the scenario's unmodelled payload and friction), ``computed_torque`` (pick-and-place reference)
and ``scenario_recorder`` (the controller's ``~/status``) - runs ``duration_s`` seconds of sim
time, stops them, and collects:

* the controller's summary (per-joint tracking RMSE over t >= settle_s, rad; mean K_P, N*m/rad;
  mean predictive std, N*m; counters),
* the recorded status rows (100 Hz with status_decimation 10), from which the end-effector
  position error (forward kinematics of q_des and q, m) is computed.

:func:`write_report` turns the results into JSON, a markdown table and a PNG (error, K_P and
std against time). No rclpy is imported here: the nodes are separate processes.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynlearn_ros.core.analytic import RigidBodyModel
from dynlearn_ros.core.schedule import default_gains
from dynlearn_ros.core.status import split_status
from dynlearn_ros.launch_graph import LOCKSTEP_STALE_TIMEOUT_MS
from dynlearn_ros.procs import NodeProcess, claim_domain_id
from dynlearn_ros.scenarios.vgain_config import ScenarioConfig


# -- one configuration ----------------------------------------------------------------------------
@dataclass
class RunResult:
    key: str
    label: str
    controller: dict        # computed_torque summary
    bridge: dict            # sim_bridge stats
    status: np.ndarray      # (rows, width) recorded ~/status
    params: dict            # controller parameters used


def home_inertia(cfg: ScenarioConfig) -> np.ndarray:
    """(n,) kg*m^2: diagonal of M(home), clipped at 1e-4 as the controller does."""
    s = cfg.spec
    rbd = RigidBodyModel(s.urdf_path, s.joint_names)
    return np.clip(np.diag(rbd.mass_matrix(s.home)), 1e-4, None)


def controller_params(cfg: ScenarioConfig, key: str) -> dict:
    """computed_torque parameters for configuration ``key`` (besides summary_path)."""
    c = cfg.configurations[key]
    p = {"robot": cfg.robot, "reference": "pick_place",
         "waypoints": cfg.waypoints_array(c.get("waypoint_offsets")).ravel().tolist(), "move_s": float(cfg.move_s),
         "dwell_s": float(cfg.dwell_s), "settle_s": float(cfg.settle_s),
         "status_decimation": int(cfg.status_decimation),
         # lockstep: a stale hold sent into the exchange would shift every later command by a
         # tick, so the wall-clock stale timeout is far above any scheduling hiccup here
         "stale_timeout_ms": LOCKSTEP_STALE_TIMEOUT_MS, **c.get("controller", {})}
    if c.get("k_max_from_k_min"):
        k_min = default_gains(home_inertia(cfg))[0]
        p["k_min"] = k_min.tolist()
        p["k_max"] = k_min.tolist()
    return p


def run_configuration(cfg: ScenarioConfig, key: str, env: dict[str, str], workdir: Path,
                      duration_s: float | None = None, timeout_s: float = 600.0,
                      models_root: Path | None = None) -> RunResult:
    """Run configuration ``key`` for ``duration_s`` sim seconds (default cfg.duration_s).

    Raises RuntimeError (with the nodes' output) if a process fails."""
    duration = float(duration_s if duration_s is not None else cfg.duration_s)
    workdir.mkdir(parents=True, exist_ok=True)
    ctl_json, br_json, rec_npy = workdir / f"ctl-{key}.json", workdir / f"bridge-{key}.json", workdir / f"status-{key}.npy"
    for p in (ctl_json, br_json, rec_npy):
        p.unlink(missing_ok=True)
    params = controller_params(cfg, key)
    if models_root is not None and params.get("model_dir") and not Path(params["model_dir"]).is_absolute():
        params["model_dir"] = str(models_root / params["model_dir"])
    rec = NodeProcess("scenario_recorder", {"out_path": str(rec_npy)}, env, workdir / f"recorder-{key}.log",
                   remaps={"status": "/computed_torque/status"})
    ctl = NodeProcess("computed_torque", {**params, "summary_path": str(ctl_json)}, env, workdir / f"ctl-{key}.log")
    procs = [rec, ctl]
    try:
        time.sleep(1.5)  # let the recorder and the controller discover each other
        br = NodeProcess("sim_bridge", {**cfg.bridge_params(), "duration_s": duration, "stats_path": str(br_json)},
                      env, workdir / f"bridge-{key}.log")
        procs.append(br)
        try:
            rc = br.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{key}: bridge did not finish {duration} s of sim time in {timeout_s} s") from exc
        if rc != 0:
            raise RuntimeError(f"{key}: bridge exit code {rc}\n{br.output()}")
        if ctl.proc.poll() is not None:
            raise RuntimeError(f"{key}: controller died (exit {ctl.proc.poll()})\n{ctl.output()}")
        rc_ctl, rc_rec = ctl.stop(), rec.stop()
        if rc_ctl != 0 or rc_rec != 0:
            raise RuntimeError(f"{key}: controller exit {rc_ctl}, recorder exit {rc_rec}\n{ctl.output()}\n{rec.output()}")
    finally:
        for p in procs:
            p.stop()
    return RunResult(key=key, label=cfg.configurations[key]["label"], controller=json.loads(ctl_json.read_text()),
                     bridge=json.loads(br_json.read_text()), status=np.load(rec_npy), params=params)


# -- analysis -------------------------------------------------------------------------------------


def ee_error(cfg: ScenarioConfig, q_des: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(rows,) m: distance between the end-effector link origins at q_des and at q (rows, n)."""
    import pinocchio as pin

    s = cfg.spec
    rbd = RigidBodyModel(s.urdf_path, s.joint_names)
    model, data = rbd.model, rbd.model.createData()
    fid = model.getFrameId(s.ee_link)
    perm = np.array([model.idx_qs[model.getJointId(j)] for j in s.joint_names])
    out = np.empty(q.shape[0])
    qp = np.zeros(model.nq)
    for i in range(q.shape[0]):
        pos = []
        for qq in (q_des[i], q[i]):
            qp[perm] = qq
            pin.framesForwardKinematics(model, data, qp)
            pos.append(data.oMf[fid].translation.copy())
        out[i] = np.linalg.norm(pos[0] - pos[1])
    return out


def summarize(cfg: ScenarioConfig, res: RunResult) -> dict:
    """Table row: per-joint RMSE (rad), overall RMSE (rad), EE position RMSE (m, from the status
    rows after settle_s), mean K_P per joint and its mean over joints (N*m/rad), mean std (N*m)."""
    c = res.controller
    n = len(c["joint_names"])
    st = split_status(res.status, n) if res.status.size else None
    ee = None
    if st is not None:
        keep = st["t"] >= cfg.settle_s
        if keep.any():
            e = ee_error(cfg, st["q_des"][keep], st["q"][keep])
            ee = float(np.sqrt(np.mean(e**2)))
    kp = np.asarray(c["mean_kp"])
    return {"key": res.key, "label": res.label, "joint_rmse_rad": c["joint_rmse_rad"],
            "rmse_rad_all": c["rmse_rad_all"], "ee_rmse_m": ee, "mean_kp": kp.tolist(),
            "mean_kp_avg": float(kp.mean()), "mean_std": c["mean_std"], "model_kind": c["model_kind"],
            "model_load_error": c.get("model_load_error", ""), "counters": c["counters"],
            "sim_time_s": c["sim_time_s"], "status_rows": int(res.status.shape[0]),
            "bridge_timeouts": res.bridge.get("timeouts"), "params": res.params}


def kp_cut(rows: dict[str, dict], key: str, ref: str = "a") -> float:
    """Relative cut of the mean K_P of ``key`` against ``ref``, averaged over joints of the
    per-joint ratio (the joints' gains differ by three orders of magnitude, so a plain mean of
    K_P would only measure the shoulder): 1 - mean_j(K_P,key,j / K_P,ref,j)."""
    a, b = np.asarray(rows[ref]["mean_kp"]), np.asarray(rows[key]["mean_kp"])
    return float(1.0 - np.mean(b / a))


def run_scenario(cfg: ScenarioConfig, keys: list[str], duration_s: float | None = None,
                 workdir: Path | None = None, log=print) -> dict:
    """Run ``keys`` one after the other on one private ROS domain; returns the report dict."""
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="vgain-"))
    results: dict[str, dict] = {}
    runs: dict[str, RunResult] = {}
    wall0 = time.perf_counter()
    with claim_domain_id() as claim:
        env = claim.env(tmp / "ros_log")
        for key in keys:
            t0 = time.perf_counter()
            runs[key] = run_configuration(cfg, key, env, tmp, duration_s)
            results[key] = summarize(cfg, runs[key])
            r = results[key]
            log(f"{key}: rmse {r['rmse_rad_all'] * 1e3:.2f} mrad, ee {1e3 * (r['ee_rmse_m'] or float('nan')):.2f} mm, "
                f"mean K_P {r['mean_kp_avg']:.1f}, {time.perf_counter() - t0:.1f} s wall")
    report = {"scenario": "vgain", "robot": cfg.robot, "duration_s": duration_s or cfg.duration_s,
              "settle_s": cfg.settle_s, "plant": cfg.bridge_params(),
              "waypoints_rad": cfg.waypoints_array().tolist(), "move_s": cfg.move_s, "dwell_s": cfg.dwell_s,
              "configurations": results, "wall_s": time.perf_counter() - wall0}
    base = {k: cfg.baseline(k) for k in results}
    report["baseline"] = {k: b for k, b in base.items() if b in results and b != k}
    report["kp_cut_vs_baseline"] = {k: kp_cut(results, k, b) for k, b in report["baseline"].items()}
    report["rmse_ratio_vs_baseline"] = {k: results[k]["rmse_rad_all"] / results[b]["rmse_rad_all"]
                                        for k, b in report["baseline"].items()}
    report["_runs"] = runs
    return report


# -- outputs --------------------------------------------------------------------------------------
def markdown(report: dict) -> str:
    rows = report["configurations"]
    n = len(next(iter(rows.values()))["joint_rmse_rad"])
    base = report.get("baseline", {})
    lines = ["| configuration | " + " | ".join(f"RMSE j{j + 1} (mrad)" for j in range(n))
             + " | RMSE all (mrad) | EE RMSE (mm) | baseline | mean K_P / K_P(baseline) | K_P cut |",
             "|---" * (n + 6) + "|"]
    for key, r in rows.items():
        b = base.get(key, key)
        ratio = np.mean(np.asarray(r["mean_kp"]) / np.asarray(rows[b]["mean_kp"]))
        ee = f"{r['ee_rmse_m'] * 1e3:.2f}" if r["ee_rmse_m"] is not None else "-"
        lines.append(f"| {r['label']} | " + " | ".join(f"{1e3 * v:.2f}" for v in r["joint_rmse_rad"])
                     + f" | {1e3 * r['rmse_rad_all']:.2f} | {ee} | ({b}) | {ratio:.3f} | {100 * (1 - ratio):.1f} % |")
    lines.append("")
    lines.append("| configuration | " + " | ".join(f"mean K_P j{j + 1}" for j in range(n))
                 + " | mean std (N*m), j1..j7 | fallbacks |")
    lines.append("|---" * (n + 3) + "|")
    for r in rows.values():
        lines.append(f"| {r['label']} | " + " | ".join(f"{v:.3g}" for v in r["mean_kp"])
                     + " | " + ", ".join(f"{v:.3g}" for v in r["mean_std"])
                     + f" | {r['counters'].get('model_fallback', 0)} |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path, cfg: ScenarioConfig) -> None:
    """PNG: per configuration the tracking error norm (mrad), mean K_P / K_max (joint average),
    and the std of joint 2 (N*m) against sim time; one column per baseline group (the
    configurations compared against the same baseline share a reference path)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[str, RunResult] = report["_runs"]
    base = report.get("baseline", {})
    groups: dict[str, list[str]] = {}
    for key in runs:
        groups.setdefault(base.get(key, key), []).append(key)
    fig, axes = plt.subplots(3, len(groups), figsize=(8 * len(groups), 7.5), sharex=True, squeeze=False)
    k_max = home_inertia(cfg) * 40.0**2
    for col, (b, keys) in enumerate(groups.items()):
        ax = axes[:, col]
        for key in keys:
            res = runs[key]
            n = len(res.controller["joint_names"])
            if not res.status.size:
                continue
            st = split_status(res.status, n)
            order = np.argsort(st["t"])
            t = st["t"][order]
            ax[0].plot(t, 1e3 * np.linalg.norm(st["error"][order], axis=1), lw=0.8, label=res.label)
            ax[1].plot(t, np.mean(st["kp"][order] / k_max, axis=1), lw=0.8, label=res.label)
            ax[2].plot(t, st["std"][order][:, 1], lw=0.8, label=f"{res.label}, joint 2")
        ax[0].set_ylabel("|q_des - q| (mrad)")
        ax[0].set_yscale("log")
        ax[1].set_ylabel("mean_j K_P / K_max")
        ax[2].set_ylabel("std joint 2 (N*m)")
        ax[2].set_yscale("log")
        ax[2].set_xlabel("sim time (s)")
        ax[0].legend(fontsize=7, loc="upper right")
        where = "scenario path" if "waypoint_offsets" not in cfg.configurations.get(b, {}) else "own path"
        ax[0].set_title(f"iiwa, payload {cfg.payload_kg:g} kg + friction: configurations vs ({b}), {where}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(report: dict, cfg: ScenarioConfig, json_path: Path | None, md_path: Path | None,
                 png_path: Path | None) -> None:
    clean = {k: v for k, v in report.items() if not k.startswith("_")}
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(clean, indent=1))
    if md_path:
        Path(md_path).parent.mkdir(parents=True, exist_ok=True)
        Path(md_path).write_text(markdown(clean))
    if png_path:
        Path(png_path).parent.mkdir(parents=True, exist_ok=True)
        plot(report, Path(png_path), cfg)
