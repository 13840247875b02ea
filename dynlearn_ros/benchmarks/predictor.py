"""The predictor's measurements: prediction error on held-out simulated runs (``dynlearn-ros report
predictor``) and its per-message cost in a real ROS graph at 1 kHz (``dynlearn-ros bench predictor``).

Prediction error (:func:`evaluate_predictor`): held-out runs of the simulated iiwa with a payload
and joint friction (``sim.collect``, seeds the shipped model never saw) are streamed row by row
through :class:`~dynlearn_ros.runtime.forward.ForwardStream` as the node streams joint states
(state k with the torque applied over the step that led to it). Every ``every`` rows after a
warm-up, from the same state o_k, five predictions of q at t_k + h are scored (h = 1, 10, 50,
100 ms; RMSE pooled over joints and points, rad; velocities likewise):

* ``acrkn_held``: what the node publishes: the ac-RKN rollout with the last applied torque held;
* ``acrkn_applied``: the ac-RKN rollout fed the torques that were actually applied over the
  horizon (the model's own quality, as if the node knew the future commands);
* ``const_velocity``: q_k + h qd_k;
* ``const_acceleration``: the last velocity change (qd_k - qd_{k-1}) / dt held over the horizon,
  integrated as the simulator steps (a two-state extrapolation; no model);
* ``pinocchio_applied`` / ``pinocchio_held``: the URDF's rigid-body forward dynamics
  qdd = M(q)^-1 (tau - C(q, qd) qd - g(q)), integrated with the simulator's semi-implicit Euler
  step at 1 ms from o_k with the applied / the held torque. It knows neither the payload nor the
  friction: the gap the learned model is there to close.

Coverage: the fraction of joint-points whose error is inside the streamed 95 % band (1.96 std).

Free-run stability (:func:`free_run_episode`): from a state every second, 1 s of open-loop
prediction fed the applied torques; RMSE of q at 250 / 500 / 1000 ms and the largest |error|,
against the same for constant velocity and Pinocchio: a model that diverges shows it here.

Cost (:func:`bench_predictor`): the node in its own process beside the realtime 1 kHz sim_bridge
and the computed_torque controller (each its own process; sensor_msgs/JointState with effort at
1 kHz); its summary gives the per-state callback cost and the per-publication rollout cost
(p50 / p99, us), its process CPU time the share of a core. Baseline measured in the same run:
the bare ONNX forward step of the same model in this process (p50 / p99, before and after), so
the figures are read as ratios on a shared machine. No rclpy here: the nodes are processes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dynlearn_ros.paths import resolve_model_dir

HORIZONS_MS = (1, 10, 50, 100)
METHODS = ("acrkn_held", "acrkn_applied", "const_velocity", "const_acceleration", "pinocchio_applied",
           "pinocchio_held")
Z95 = 1.959964


@dataclass(frozen=True)
class HeldOut:
    """One held-out data set: ``episodes`` x ``seconds`` of the iiwa tracking random Fourier
    references (the training data's controller), ``payload_kg`` at the end effector, viscous /
    Coulomb friction on every joint, episode trajectories drawn from ``seed``."""

    payload_kg: float
    seed: int
    friction_viscous: float = 0.3
    friction_coulomb: float = 0.05
    episodes: int = 2
    seconds: float = 6.0

    @property
    def label(self) -> str:
        return f"{self.payload_kg:g} kg, b={self.friction_viscous:g}, fc={self.friction_coulomb:g}, seed {self.seed}"


def collect_held_out(h: HeldOut):
    from dynlearn_ros.sim.collect import collect_dataset

    return collect_dataset(robot="iiwa", episodes=h.episodes, seconds=h.seconds, payload_kg=h.payload_kg,
                           friction_viscous=h.friction_viscous, friction_coulomb=h.friction_coulomb, seed=h.seed)


class _Pinocchio:
    """Semi-implicit Euler with the URDF's rigid-body model: qdd = M^-1 (tau - h(q, qd))."""

    def __init__(self, joint_names: Sequence[str]) -> None:
        from dynlearn_ros.core.analytic import RigidBodyModel
        from dynlearn_ros.core.robots import robot_spec

        self.rbd = RigidBodyModel(robot_spec("iiwa").urdf_path, joint_names)
        n = self.rbd.n
        self._h, self._zero = np.zeros(n), np.zeros(n)

    def rollout(self, q0: np.ndarray, qd0: np.ndarray, taus: np.ndarray, dt: float, out_q: np.ndarray,
                out_qd: np.ndarray) -> None:
        """taus (K, n) N*m -> out_q / out_qd (K, n): the state after each step."""
        q, qd = q0.copy(), qd0.copy()
        for i in range(taus.shape[0]):
            self.rbd.rnea(q, qd, self._zero, self._h)
            qdd = np.linalg.solve(self.rbd.mass_matrix(q), taus[i] - self._h)
            qd += dt * qdd
            q += dt * qd
            out_q[i], out_qd[i] = q, qd


def applied_rollout(model, snap: np.ndarray, obs: np.ndarray, q0: np.ndarray, qd0: np.ndarray, taus: np.ndarray,
                    mean: np.ndarray, var: np.ndarray, out_q: np.ndarray, out_qd: np.ndarray | None = None) -> bool:
    """The ac-RKN ``model`` fed the applied torques ``taus`` (K, n) N*m open loop from [q0, qd0]
    (rad, rad/s), its belief snapshotted into ``snap`` and restored after; ``obs``, ``mean``,
    ``var`` (2n,) are scratch. out_q (and out_qd) (K, n): the predicted state after each step, NaN
    from the first failed step on. Returns False if a step failed."""
    n = q0.shape[0]
    obs[:n], obs[n:] = q0, qd0
    model.snapshot_into(snap)
    ok = True
    for i in range(taus.shape[0]):
        ok = ok and model.predict(obs if i == 0 else None, taus[i], mean, var)
        out_q[i] = mean[:n] if ok else np.nan
        if out_qd is not None:
            out_qd[i] = mean[n:] if ok else np.nan
    model.restore(snap)
    return ok


def evaluate_episode(model, pin: _Pinocchio, q: np.ndarray, qd: np.ndarray, tau: np.ndarray, t: np.ndarray,
                     every: int, warmup: int, acc: dict) -> None:
    """Stream one episode (rows of q, qd (rad, rad/s), tau (N*m, applied over the row's step), t (s))
    and add the squared errors / band hits of every method at HORIZONS_MS to ``acc``."""
    from dynlearn_ros.runtime.forward import ForwardStream

    dt = float(model.metadata.dt)
    hs = [int(round(h * 1e-3 / dt)) for h in HORIZONS_MS]
    hmax = hs[-1]
    n = q.shape[1]
    stream = ForwardStream(model, hmax, dt, 0.2)
    snap = np.zeros(model.snapshot_size, dtype=np.float32)
    m_mean, m_var = np.zeros(2 * n), np.zeros(2 * n)
    app_q, app_qd = np.zeros((hmax, n)), np.zeros((hmax, n))
    pq, pqd = np.zeros((hmax, n)), np.zeros((hmax, n))
    obs = np.zeros(2 * n)
    rows = q.shape[0]
    for k in range(rows):
        stream.observe(q[k], qd[k], tau[k - 1] if k else tau[0], t[k])
        if k < warmup or (k - warmup) % every or k + hmax >= rows:
            continue
        if not stream.rollout():
            acc["failed_rollouts"] += 1
            continue
        # the ac-RKN fed the applied torques over the horizon (same belief, restored after)
        if not applied_rollout(model, snap, obs, q[k], qd[k], tau[k:k + hmax], m_mean, m_var, app_q, app_qd):
            acc["failed_rollouts"] += 1
            continue
        preds = {"acrkn_held": (stream.q_pred, stream.qd_pred), "acrkn_applied": (app_q, app_qd)}
        for name, taus in (("pinocchio_applied", tau[k:k + hmax]), ("pinocchio_held", np.repeat(tau[k - 1:k], hmax, 0))):
            pin.rollout(q[k], qd[k], taus, dt, pq, pqd)
            preds[name] = (pq.copy(), pqd.copy())
        steps = (np.arange(1, hmax + 1) * dt)[:, None]
        preds["const_velocity"] = (q[k] + steps * qd[k], np.repeat(qd[k:k + 1], hmax, 0))
        # the last velocity change held, integrated as the simulator steps (semi-implicit Euler):
        # qd_i = qd_k + i dt a, q_i = q_k + i dt qd_k + dt^2 a i (i + 1) / 2
        a = (qd[k] - qd[k - 1]) / dt
        i = np.arange(1, hmax + 1)[:, None]
        preds["const_acceleration"] = (q[k] + steps * qd[k] + (dt * dt * i * (i + 1) / 2) * a, qd[k] + steps * a)
        acc["points"] += 1
        for j, h in enumerate(hs):
            truth_q, truth_qd = q[k + h], qd[k + h]
            for name, (mq, mqd) in preds.items():
                acc["sq_q"][name][j] += float(np.sum((mq[h - 1] - truth_q) ** 2))
                acc["sq_qd"][name][j] += float(np.sum((mqd[h - 1] - truth_qd) ** 2))
            acc["in_band"][j] += int(np.count_nonzero(np.abs(stream.q_pred[h - 1] - truth_q)
                                                      <= Z95 * stream.q_std[h - 1]))
            acc["in_band_applied"][j] += int(np.count_nonzero(np.abs(app_q[h - 1] - truth_q)
                                                              <= Z95 * stream.q_std[h - 1]))
            acc["std_q"][j] += float(np.sum(stream.q_std[h - 1] ** 2))


FREE_RUN_MS = (250, 500, 1000)
FREE_METHODS = ("acrkn_applied", "const_velocity", "pinocchio_applied")


def free_run_episode(model, pin: _Pinocchio, q: np.ndarray, qd: np.ndarray, tau: np.ndarray, t: np.ndarray,
                     warmup: int, acc: dict) -> None:
    """Free runs of FREE_RUN_MS[-1] from a state every as many rows (after ``warmup``), fed the
    applied torques: squared q errors at FREE_RUN_MS and the largest |q error| of each run."""
    from dynlearn_ros.runtime.forward import ForwardStream

    dt = float(model.metadata.dt)
    idx = [int(round(h * 1e-3 / dt)) for h in FREE_RUN_MS]
    length = idx[-1]
    n = q.shape[1]
    stream = ForwardStream(model, 1, dt, 0.2)
    snap = np.zeros(model.snapshot_size, dtype=np.float32)
    mean, var, obs = np.zeros(2 * n), np.zeros(2 * n), np.zeros(2 * n)
    run_q = np.zeros((length, n))
    pq, pqd = np.zeros((length, n)), np.zeros((length, n))
    for k in range(q.shape[0]):
        stream.observe(q[k], qd[k], tau[k - 1] if k else tau[0], t[k])
        if k < warmup or (k - warmup) % length or k + length >= q.shape[0]:
            continue
        ok = applied_rollout(model, snap, obs, q[k], qd[k], tau[k:k + length], mean, var, run_q)
        pin.rollout(q[k], qd[k], tau[k:k + length], dt, pq, pqd)
        steps = (np.arange(1, length + 1) * dt)[:, None]
        truth = q[k + 1:k + length + 1]
        acc["runs"] += 1
        for name, pred in (("acrkn_applied", run_q), ("pinocchio_applied", pq),
                           ("const_velocity", q[k] + steps * qd[k])):
            err = pred - truth
            acc["max_abs"][name] = max(acc["max_abs"][name], float(np.nanmax(np.abs(err))) if ok or
                                       name != "acrkn_applied" else np.inf)
            for j, r in enumerate(idx):
                acc["sq"][name][j] += float(np.sum(err[r - 1] ** 2))


#: the calibration's target: the 95 % band (Z95 std) should hold this fraction of the errors
CALIBRATION_QUANTILE = 0.95


def calibration_errors(model, q: np.ndarray, qd: np.ndarray, tau: np.ndarray, t: np.ndarray, steps: int,
                       every: int, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Stream one episode through :class:`~dynlearn_ros.runtime.forward.ForwardStream` as the node
    does and, every ``every`` rows after ``warmup``, roll out ``steps`` model steps with the last
    applied torque held (what the node streams). Returns (errors, std), each (points, steps, 2n)
    in the model's order: predicted minus true [q, qd] at each step, and the model's streamed std
    (calibration as currently set on ``model``)."""
    from dynlearn_ros.runtime.forward import ForwardStream

    n = q.shape[1]
    stream = ForwardStream(model, 1, float(model.metadata.dt), 0.2)
    snap = np.zeros(model.snapshot_size, dtype=np.float32)
    mean, var = np.zeros((steps, 2 * n)), np.zeros((steps, 2 * n))
    truth = np.concatenate([q, qd], axis=1)
    errs, stds = [], []
    for k in range(q.shape[0]):
        stream.observe(q[k], qd[k], tau[k - 1] if k else tau[0], t[k])
        if k < warmup or (k - warmup) % every or k + steps >= q.shape[0]:
            continue
        if model.rollout(stream.obs, stream.action, mean, var, snap) != steps:
            continue
        errs.append(mean - truth[k + 1:k + 1 + steps])
        stds.append(np.sqrt(var))
    empty = np.zeros((0, steps, 2 * n))
    return (np.array(errs), np.array(stds)) if errs else (empty, empty)


def fit_std_scale(model_dir: str | Path, sets: Sequence[HeldOut], steps: int = 300, every: int = 25,
                  warmup: int = 200) -> dict:
    """Per-step std scale of a forward model on validation runs (never the report's held-out sets):
    for each step h = 1 .. ``steps`` after the last state and each value d of [q, qd],
    scale[h, d] = quantile_0.95(|error| / std) / 1.96 over the points of ``sets``, then the running
    maximum over h, so that the 95 % band of the scaled std holds (at least) 95 % of the
    validation errors at every step (the raw std sums one-step variances as if the errors were
    independent; the real ones drift, so the needed factor grows with h). Returns {"scale": (steps, 2n) list, "source", "points",
    "coverage95_before": per step (q pooled), ...}; :func:`write_std_scale` stores it."""
    from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor

    path = resolve_model_dir(str(model_dir))
    model = AcrknForwardPredictor.from_directory(path)
    model.set_std_scale(None)
    errs, stds = [], []
    for h in sets:
        data = collect_held_out(h)
        for e in np.unique(data.episode):
            sel = data.episode == e
            er, sd = calibration_errors(model, data.q[sel], data.qd[sel], data.tau[sel], data.t[sel], steps, every, warmup)
            errs.append(er)
            stds.append(sd)
    err, std = np.concatenate(errs), np.concatenate(stds)
    if len(err) < 20:
        raise ValueError(f"{len(err)} calibration points: too few for a 95 % quantile (need >= 20)")
    z = np.abs(err) / np.maximum(std, 1e-12)
    scale = np.maximum(np.quantile(z, CALIBRATION_QUANTILE, axis=0) / Z95, 1e-3)   # (steps, 2n)
    # non-decreasing in h (running maximum): the raw std accumulates, so the streamed std stays
    # non-decreasing along the horizon, and sampling noise in one step's quantile cannot narrow it
    scale = np.maximum.accumulate(scale, axis=0)
    n = err.shape[2] // 2
    return {"scale": scale.tolist(), "points": int(len(err)), "steps": steps,
            "source": "per step and value: 95th percentile of |error| / std over held-torque rollouts of "
                      + "; ".join(h.label for h in sets) + f" (every {every} rows after {warmup}), / 1.96",
            "coverage95_q_before": np.mean(z[..., :n] <= Z95, axis=(0, 2)).tolist(),
            "coverage95_q_after": np.mean(z[..., :n] <= Z95 * scale[None, :, :n], axis=(0, 2)).tolist()}


def write_std_scale(model_dir: str | Path, cal: dict) -> Path:
    """Store ``cal`` (:func:`fit_std_scale`) as metadata ``acrkn.std_scale`` {"scale", "source",
    "points"} of the model directory (metadata.json rewritten through a temporary file and a
    rename; the graph and golden replay are unchanged), then check that it loads."""
    import json
    import os

    from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor
    from dynlearn_ros.runtime.metadata import compact_json

    path = resolve_model_dir(str(model_dir))
    meta_path = path / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["acrkn"]["std_scale"] = {k: cal[k] for k in ("scale", "source", "points")}
    tmp = meta_path.with_suffix(".json.tmp")
    tmp.write_text(compact_json(meta))   # as ModelMetadata.write
    os.replace(tmp, meta_path)
    AcrknForwardPredictor.from_directory(path)
    return path


def evaluate_predictor(model_dir: str | Path = "acrkn_iiwa_fwd", sets: Sequence[HeldOut] = (),
                       every: int = 20, warmup: int = 200) -> dict:
    """The error table of the module docstring for each held-out set. Returns
    {"model_dir", "model_version", "horizons_ms", "sets": [{"label", ..., "rmse_q_rad": {method:
    [per horizon]}, "rmse_qd_rad_s": ..., "coverage95_q", "coverage95_q_applied", "mean_std_q_rad",
    "points"}], "wall_s"}."""
    from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor

    t0 = time.perf_counter()
    path = resolve_model_dir(str(model_dir))
    model = AcrknForwardPredictor.from_directory(path)
    pin = _Pinocchio(model.metadata.joint_names)
    out = {"model_dir": str(path), "model_version": model.version, "horizons_ms": list(HORIZONS_MS),
           "every_rows": every, "warmup_rows": warmup, "sets": []}
    nh = len(HORIZONS_MS)
    for h in sets:
        data = collect_held_out(h)
        if tuple(data.joint_names) != tuple(model.metadata.joint_names):
            raise ValueError(f"held-out joints {data.joint_names} differ from the model's {model.metadata.joint_names}")
        acc = {"points": 0, "failed_rollouts": 0, "sq_q": {m: np.zeros(nh) for m in METHODS},
               "sq_qd": {m: np.zeros(nh) for m in METHODS}, "in_band": np.zeros(nh, dtype=np.int64),
               "in_band_applied": np.zeros(nh, dtype=np.int64), "std_q": np.zeros(nh)}
        free = {"runs": 0, "sq": {m: np.zeros(len(FREE_RUN_MS)) for m in FREE_METHODS},
                "max_abs": {m: 0.0 for m in FREE_METHODS}}
        for e in np.unique(data.episode):
            sel = data.episode == e
            evaluate_episode(model, pin, data.q[sel], data.qd[sel], data.tau[sel], data.t[sel], every, warmup, acc)
            free_run_episode(model, pin, data.q[sel], data.qd[sel], data.tau[sel], data.t[sel], warmup, free)
        cnt = max(1, acc["points"] * model.act_dim)
        fcnt = max(1, free["runs"] * model.act_dim)
        out["sets"].append({
            "label": h.label, **asdict(h), "points": acc["points"], "failed_rollouts": acc["failed_rollouts"],
            "rmse_q_rad": {m: np.sqrt(acc["sq_q"][m] / cnt).tolist() for m in METHODS},
            "rmse_qd_rad_s": {m: np.sqrt(acc["sq_qd"][m] / cnt).tolist() for m in METHODS},
            "coverage95_q": (acc["in_band"] / cnt).tolist(),
            "coverage95_q_applied": (acc["in_band_applied"] / cnt).tolist(),
            "mean_std_q_rad": np.sqrt(acc["std_q"] / cnt).tolist(),
            "q_std_rad": float(np.std(data.q - data.q.mean(axis=0))),
            "free_run": {"horizons_ms": list(FREE_RUN_MS), "runs": free["runs"],
                         "rmse_q_rad": {m: np.sqrt(free["sq"][m] / fcnt).tolist() for m in FREE_METHODS},
                         "max_abs_q_rad": dict(free["max_abs"])},
        })
    out["wall_s"] = time.perf_counter() - t0
    return out


def predictor_markdown(res: dict) -> str:
    """The docs table: per held-out set, RMSE of q (mrad) per method and horizon, and coverage."""
    from dynlearn_ros.reporting.markdown import md_table

    hs = res["horizons_ms"]
    header = ["held-out set", "method", *[f"{h} ms" for h in hs]]
    rows = []
    for s in res["sets"]:
        for m in METHODS:
            rows.append([s["label"], m, *[f"{1e3 * v:.3f}" for v in s["rmse_q_rad"][m]]])
        rows.append([s["label"], "coverage of the streamed 95 % band", *[f"{v:.2f}" for v in s["coverage95_q"]]])
    fr = ["held-out set", "free run (applied torques)", *[f"{h} ms" for h in FREE_RUN_MS], "max abs error"]
    frows = []
    for s in res["sets"]:
        f = s["free_run"]
        for m in FREE_METHODS:
            frows.append([f"{s['label']} ({f['runs']} runs)", m, *[f"{1e3 * v:.1f}" for v in f["rmse_q_rad"][m]],
                          f"{1e3 * f['max_abs_q_rad'][m]:.1f}"])
    return (f"RMSE of q (mrad) at each horizon, model {res['model_dir']} (version {res['model_version']}); "
            f"{res['sets'][0]['points'] if res['sets'] else 0} points per set\n\n" + md_table(header, rows) + "\n\n"
            "Free runs (mrad): RMSE of q at each time and the largest |error| of any joint in any run\n\n"
            + md_table(fr, frows) + "\n")


# -- cost at 1 kHz --------------------------------------------------------------------------------
def _onnx_baseline(model, q: np.ndarray, qd: np.ndarray, tau: np.ndarray, calls: int) -> dict:
    """p50 / p99 (us) of one bare forward step (AcrknForwardPredictor.predict) on recorded rows."""
    n = q.shape[1]
    obs, mean, var = np.zeros(2 * n), np.zeros(2 * n), np.zeros(2 * n)
    ns = np.zeros(calls, dtype=np.int64)
    model.reset()
    for i in range(calls):
        k = i % q.shape[0]
        obs[:n], obs[n:] = q[k], qd[k]
        t0 = time.perf_counter_ns()
        model.predict(obs, tau[k], mean, var)
        ns[i] = time.perf_counter_ns() - t0
    us = ns[calls // 10:] * 1e-3
    return {"p50": float(np.percentile(us, 50)), "p99": float(np.percentile(us, 99)), "n": int(us.size)}


def _cpu_s(pid: int) -> float:
    """utime + stime of process ``pid`` (s), from /proc."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_predictor(model_dir: str | Path = "acrkn_iiwa_fwd", seconds: float = 10.0, publish_rate_hz: float = 10.0,
                    horizon: int = 100, workdir: Path | None = None, rollout_thread: bool = True,
                    state_depth: int | None = None) -> dict:
    """Run sim_bridge (realtime, 1 kHz, 3 kg payload, friction) <-> computed_torque (analytic,
    pick-and-place) with the predictor listening, each its own process, for ``seconds`` of sim
    time; see the module docstring. ``state_depth``: the node's joint_states subscription depth
    (its QoS override; None: the node's default, ``qos.STATE_STREAM``). No rclpy here: the nodes'
    JSON summaries are read back."""
    import json
    import os
    import tempfile

    from dynlearn_ros.procs import NodeProcess, claim_domain_id
    from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor

    workdir = Path(workdir or tempfile.mkdtemp(prefix="bench-predictor-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = resolve_model_dir(str(model_dir))
    model = AcrknForwardPredictor.from_directory(path)
    data = collect_held_out(HeldOut(3.0, 201, episodes=1, seconds=2.0))
    baseline_before = _onnx_baseline(model, data.q, data.qd, data.tau, 3000)
    files = {k: workdir / f"{k}.json" for k in ("predictor", "computed_torque", "sim_bridge")}
    with claim_domain_id() as claim:
        env = claim.env(workdir / "ros_log")
        params = {"model_dir": str(path), "horizon": horizon, "publish_rate_hz": publish_rate_hz,
                  "rollout_thread": rollout_thread, "summary_path": str(files["predictor"])}
        if state_depth is not None:
            params["qos_overrides./joint_states.subscription.depth"] = int(state_depth)
        pred = NodeProcess("predictor", params, env, workdir / "predictor.log")
        ctl = NodeProcess("computed_torque", {"robot": "iiwa", "reference": "pick_place",
                                              "summary_path": str(files["computed_torque"])},
                          env, workdir / "computed_torque.log")
        deadline = time.monotonic() + 90.0
        while "forward model" not in pred.output() or "robot=iiwa" not in ctl.output():
            if time.monotonic() > deadline or pred.poll() is not None or ctl.poll() is not None:
                raise RuntimeError(f"nodes did not start:\n{pred.tail()}\n{ctl.tail()}")
            time.sleep(0.1)
        bridge = NodeProcess("sim_bridge", {"robot": "iiwa", "stepping": "realtime", "payload_kg": 3.0,
                                            "friction_viscous": [0.3], "friction_coulomb": [0.05],
                                            "duration_s": seconds, "stats_path": str(files["sim_bridge"])},
                             env, workdir / "sim_bridge.log")
        cpu0, wall0 = _cpu_s(pred.pid), time.monotonic()
        try:
            bridge.wait(timeout=seconds * 20 + 120.0)
            wall = time.monotonic() - wall0
            cpu = _cpu_s(pred.pid) - cpu0
        finally:
            for proc in (bridge, pred, ctl):
                proc.stop()
    baseline_after = _onnx_baseline(model, data.q, data.qd, data.tau, 3000)
    read = {k: json.loads(f.read_text()) if f.is_file() else {} for k, f in files.items()}
    s = read["predictor"]
    base_p50 = 0.5 * (baseline_before["p50"] + baseline_after["p50"])
    base_p99 = 0.5 * (baseline_before["p99"] + baseline_after["p99"])
    st, ro = s.get("state_us") or {}, s.get("rollout_us") or {}
    return {
        "model_dir": str(path), "sim_seconds": seconds, "wall_s": wall, "publish_rate_hz": publish_rate_hz,
        "horizon": horizon, "rollout_thread": rollout_thread, "state_depth": state_depth, "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
        "bridge": {k: read["sim_bridge"].get(k) for k in ("ticks", "deadline_miss_ratio", "round_trip_us", "cpu_percent")},
        "controller_tick_us": read["computed_torque"].get("controller_tick_us"),
        "node": {k: s.get(k) for k in ("state_us", "rollout_us", "published", "rejected", "stream", "online_score",
                                         "states_lost_in_middleware")},
        "node_cpu_share": cpu / wall if wall > 0 else None,
        "baseline_onnx_step_us": {"before": baseline_before, "after": baseline_after},
        "ratio_state_p50_to_onnx_p50": (st.get("p50") or np.nan) / base_p50,
        "ratio_state_p99_to_onnx_p99": (st.get("p99") or np.nan) / base_p99,
        "ratio_rollout_p50_to_onnx_p50": (ro.get("p50") or np.nan) / base_p50,
        # states the bridge sent vs the node observed (a rollout on the state path used to lose some)
        "states_sent": read["sim_bridge"].get("ticks"),
        "states_observed": (s.get("stream") or {}).get("observed"),
        "workdir": str(workdir),
    }
