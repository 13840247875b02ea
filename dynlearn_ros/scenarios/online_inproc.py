"""Learning while it controls, in one process: a payload schedule the controller must adapt to.

The plant, reference and controller of the variance-scheduled scenario
(``config/scenario_vgain.yaml``, :mod:`dynlearn_ros.scenarios.vgain_inproc`: PyBullet iiwa with
joint friction, pick-and-place, 1 kHz lockstep), but the payload at the end effector steps
through a schedule of masses during one run. Compared configurations:

* ``fixed``:  fixed high gains + analytic model (the scenario's (a));
* ``learned``: scheduled gains + the shipped SVDKL model, fixed (the scenario's (c));
* ``learned_rs``: as ``learned`` with the realized-error sigma (core/residual.py) on;
* ``online``: scheduled gains + realized-error sigma + the online learner
  (:mod:`dynlearn_ros.learning.online`) fed with every lockstep sample, its accepted versions
  swapped into the controller (``swap_model`` with the model's tuning, between two ticks);
* ``acrkn`` / ``online_acrkn``: the same two with the shipped ac-RKN inverse model (the
  scenario's (d)) instead of the SVDKL.

Lockstep: the learner's cycle (fit + gate + export + validation) and the load of an accepted
version run between two control ticks every ``cycle_s`` of sim time; the simulation does not
advance meanwhile, so training time appears as a simulated pause, not as late ticks (the ROS
graph runs the trainer in its own process instead). ``--seed`` draws the features.

    python -m dynlearn_ros.scenarios.online_inproc --phases 5:21,12:21,0:21,15:21,8:21 \\
        --json runs/online.json --png docs/img/online_payload.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from dynlearn_ros.core.assembly import build_analytic, build_controller, build_tuning, builtin_reference
from dynlearn_ros.core.config import robot_context, validate
from dynlearn_ros.core.control import Mode
from dynlearn_ros.paths import resolve_model_dir
from dynlearn_ros.scenarios.vgain import controller_params
from dynlearn_ros.scenarios.vgain_config import ScenarioConfig, load_config
from dynlearn_ros.sim.plant import SimPlant

CONFIGS = {
    "fixed": ("fixed high gains + analytic", "a", {}),
    "learned": ("scheduled + fixed SVDKL", "c", {}),
    "learned_rs": ("scheduled + fixed SVDKL + realized-error sigma", "c", {"residual_window_s": 0.1}),
    "online": ("scheduled + online SVDKL + realized-error sigma", "c", {"residual_window_s": 0.1}),
    "acrkn": ("scheduled + fixed ac-RKN", "d", {}),
    "online_acrkn": ("scheduled + online ac-RKN + realized-error sigma", "d", {"residual_window_s": 0.1}),
}
#: the configurations run when none are named (the SVDKL comparison; the ac-RKN pair on request)
DEFAULT_CONFIGS = "fixed,learned,learned_rs,online"
LOG_EVERY = 10   # ticks between logged rows (100 Hz)
#: the gain floor's payload margin (kg): the largest change of the schedule (0 to 15 kg)
PAYLOAD_MARGIN_KG = 15.0
#: the goal's K_P cut (issue 10): mean K_P at least 40 % below fixed high gains
GOAL_KP_CUT = 0.40


def adaptation_time(period_s: float, holdout: int, dt: float, cycle_s: float) -> float:
    """T_a (s): how long after a payload change (or the start) the online controller counts as
    adapted, from the learner's mechanism, not from its results.

    A version can only know the motion it has trained on. The correction is a function of
    x = [q, qd, qdd] (learning/online.py), so a version fitted before the reference has passed
    through all of its motion since the change has not seen the rest of it: the samples of the
    new plant cover the reference once after one period ``period_s`` (the pick-and-place loop,
    n_moves * (move_s + dwell_s); 10 s in config/scenario_vgain.yaml: 5 moves of 1.5 s + 0.5 s). A sample enters the fit
    only when it is older than the ``holdout`` newest (holdout * dt: 0.2 s at 1 kHz, the gate's
    window), and the next cycle comes at most ``cycle_s`` later (0.5 s), whose version is
    swapped in before the next tick. So T_a = period_s + holdout * dt + cycle_s (10.7 s here).

    The payload alone is one number and is pinned by the first version after the change
    (~holdout * dt + cycle_s, reported per phase as ``first_swap_s``); the friction and base
    corrections (W) need the coverage, so T_a is the bound for both, the same for every phase."""
    return float(period_s + holdout * dt + cycle_s)


def parse_phases(text: str) -> list[tuple[float, float]]:
    """'kg:seconds,kg:seconds,...' -> [(kg, s), ...]; each kg in [0, 15], s > 0."""
    out = []
    for part in text.split(","):
        kg, s = (float(v) for v in part.split(":"))
        if not (0.0 <= kg <= 15.0 and s > 0):
            raise ValueError(f"phase {part!r}: need 0 <= kg <= 15 and seconds > 0")
        out.append((kg, s))
    return out


def parse_learner(text: str) -> dict:
    """'key=value,...' -> OnlineConfig overrides (ints, floats, booleans 0/1 / true/false, strings;
    a tuple of floats with ';' between its values, e.g. 'k_max=900;900;500;500;100;100;50').
    Raises ValueError naming the option on an unknown key or a value of the wrong kind."""
    from dynlearn_ros.learning.online import OnlineConfig

    fields = {f.name: f.type for f in dataclasses.fields(OnlineConfig)}
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, val = part.partition("=")
        if key not in fields:
            raise ValueError(f"learner option {key!r}: not one of {sorted(fields)}")
        kind = str(fields[key])
        try:
            if kind == "bool":
                out[key] = val.lower() in ("1", "true", "yes")
            elif kind == "int":
                out[key] = int(val)
            elif kind == "float":
                out[key] = float(val)
            elif kind.startswith("tuple[float"):
                out[key] = tuple(float(v) for v in val.split(";") if v.strip())
            else:
                out[key] = val
        except ValueError:
            raise ValueError(f"learner option {key}={val!r}: not a {kind}"
                             + (" (values separated by ';')" if kind.startswith("tuple") else "")) from None
    return out


def run_online(cfg: ScenarioConfig, key: str, phases: list[tuple[float, float]], cycle_s: float = 0.5,
               seed: int = 0, workdir: Path | None = None, learner_opts: dict | None = None,
               payload_margin_kg: float = PAYLOAD_MARGIN_KG, realized: bool = False) -> dict:
    """Run configuration ``key`` of :data:`CONFIGS` through ``phases``; returns the logged series
    (t, payload, err (rad), kp, sigma, version) at 100 Hz and the learner's metrics.
    ``payload_margin_kg``: the controller's gain floor parameter (core/gain_floor.py), the same
    for every configuration (so the fixed-gain reference has the same top stiffness).
    ``realized``: at each cycle, :func:`realized_check` of the running model (a replay of 300 steps
    per cycle: ``report online`` turns it on, the tests leave it off)."""
    label, base_key, extra = CONFIGS[key]
    p = {**controller_params(cfg, base_key), **extra, "reference": "pick_place",
         "payload_margin_kg": float(payload_margin_kg)}
    config = validate(p, robot_context(cfg.robot))
    analytic = build_analytic(config)
    spec = cfg.spec
    n, dt = spec.n, config.control_period_s
    if config.model_kind == "analytic":
        model = analytic
    else:
        from dynlearn_ros.runtime.registry import load_inverse_model
        model = load_inverse_model(config.model_kind, resolve_model_dir(config.model_dir), spec.joint_names)
    reference = builtin_reference(config, spec.home)
    ctl = build_controller(config, model, analytic, reference)
    # the reference's period (s): the pick-and-place loop; a sine's period; none for a hold
    period_s = (reference.n_moves * reference.segment_s if hasattr(reference, "segment_s")
                else 1.0 / config.sine_freq_hz if config.reference == "sine" else 0.0)
    urdf = config.urdf_path or str(spec.urdf_path)    # the controller's URDF (an analytic base's RNEA)
    from dynlearn_ros.learning.online import OnlineConfig

    learner = diff = None
    if key.startswith("online"):
        from dynlearn_ros.learning.online import OnlineLearner, StateDifferencer
        from dynlearn_ros.runtime.registry import load_inverse_model
        from dynlearn_ros.runtime.slot import PLANT_FIT_ROWS, PlantFitRefused, check_plant_fit
        out = Path(workdir or tempfile.mkdtemp(prefix="online-")) / "models"
        # k_max: the controller's own K_P ceiling as its schedule runs it (after the payload
        # floor), the arm term of a correction-variance version's bounds (learning/online.py)
        learner = OnlineLearner(resolve_model_dir(config.model_dir), out,
                                OnlineConfig(**{"seed": seed, "urdf": urdf,
                                                "k_max": tuple(float(v) for v in ctl.schedule.k_max),
                                                **(learner_opts or {})}))
        if list(learner.meta.joint_names) != list(spec.joint_names):   # k_max above is in the URDF's order
            raise ValueError(f"{config.model_dir}: joints {list(learner.meta.joint_names)}, the controller's "
                             f"{list(spec.joint_names)}")
        diff = StateDifferencer(n)
    holdout = learner.cfg.holdout if learner is not None else OnlineConfig.holdout   # T_a of the ref too
    plant = SimPlant(cfg.robot, dt=dt, friction_viscous=cfg.friction_viscous, friction_coulomb=cfg.friction_coulomb,
                     coulomb_velocity_eps=cfg.coulomb_velocity_eps, payload_kg=phases[0][0])
    bounds = np.cumsum([s for _, s in phases])
    steps = int(round(bounds[-1] / dt))
    cyc_every = max(1, int(round(cycle_s / dt)))
    q, qd = np.zeros(n), np.zeros(n)
    log = {k: [] for k in ("t", "payload", "err", "kp", "sigma", "std", "version", "mode")}
    swaps, refused, pause_s, phase, diverged = [], [], 0.0, 0, False
    realized: list[dict] = []   # per cycle: the running model's exact vs linearized realized error
    wall0 = time.perf_counter()
    try:
        plant.reset(spec.home, np.zeros(n))
        for k in range(steps):
            t = k * dt
            if phase + 1 < len(phases) and t >= bounds[phase] - 1e-9:
                phase += 1
                plant.set_payload(phases[phase][0])
            plant.state_into(q, qd)
            if not (np.isfinite(q).all() and np.abs(ctl.err).max() < 3.0):
                diverged = True
                break
            if diff is not None and k:
                s = diff.push(q, qd, t, ctl.tau)     # ctl.tau: what the plant applied over the step
                if s is not None:
                    learner.add(*s, contiguous=diff.contiguous)
                if k % cyc_every == 0 and learner.ready():
                    w0 = time.perf_counter()
                    # the replay resets the model: only where its outputs have no state (an svdkl,
                    # or a version on the analytic base with the correction's own variance)
                    if realized and (ctl.model.kind == "svdkl" or (getattr(ctl.model, "base", None) is not None
                                                                   and learner.cfg.analytic_var == "correction")):
                        realized.append(realized_check(ctl, t, dt))
                    res = learner.cycle()
                    if res is not None and res.accepted:
                        new = load_inverse_model(config.model_kind, res.path, spec.joint_names, urdf=urdf)
                        try:    # the controller's swap check on its own recent steps (runtime/slot.py)
                            check_plant_fit(new, ctl.residual.snapshot(PLANT_FIT_ROWS), ctl.schedule.sigma_n, dt)
                        except PlantFitRefused as exc:
                            refused.append({"t": t, "version": res.version, "reason": str(exc)})
                        else:
                            ctl.swap_model(new, build_tuning(config, new))
                            swaps.append({"t": t, "version": res.version})
                    pause_s += time.perf_counter() - w0
            ctl.step(q, qd, t, 0.0)
            if k % LOG_EVERY == 0:
                log["t"].append(t)
                log["payload"].append(phases[phase][0])
                log["err"].append(ctl.err.copy())
                log["kp"].append(ctl.kp.copy())
                log["sigma"].append(ctl.sigma_sched.copy())
                log["std"].append(ctl.std.copy())
                log["version"].append(ctl.model.version)
                log["mode"].append(int(ctl.mode))
            plant.step(ctl.tau)
    finally:
        plant.close()
    series = {k: np.asarray(v) for k, v in log.items()}
    return {"key": key, "label": label, "series": series, "phases": phases, "diverged": diverged,
            "swaps": swaps, "plant_fit_refused": refused, "realized_check": realized, "learner": learner.metrics() if learner else None,
            "learner_cycles": [vars(h) for h in learner.history] if learner else [],
            "pause_s": pause_s, "wall_s": time.perf_counter() - wall0, "period_s": period_s,
            "t_adapt_s": adaptation_time(period_s, holdout, dt, cycle_s)}


def realized_check(ctl, t: float, dt: float) -> dict:
    """What the realized-error sigma (core/residual.py) sees, against the exact error, on the
    controller's last PLANT_FIT_ROWS steps (0.3 s): per joint (n,) N*m, "linearized" = RMS of the
    raw innovation r (the running model's prediction at the reference acceleration + M(q)(a -
    qdd_des)), "exact" = RMS of tau - f(q, qd, a), the same model evaluated at the measured
    acceleration (runtime/slot.py check_plant_fit replays it), "std" = the model's std and
    "sigma" = the std the schedule read, at time ``t`` (s). For a model on the analytic base f =
    RNEA + c(x) and RNEA is linear in a, so exact - linearized is the correction's own change
    between qdd_des and a plus M's part in the feedback (none: the controller's M is the URDF's).
    Only for a model whose outputs carry no state (the replay resets it)."""
    from dynlearn_ros.runtime.slot import PLANT_FIT_ROWS, check_plant_fit

    out = check_plant_fit(ctl.model, ctl.residual.snapshot(PLANT_FIT_ROWS), ctl.schedule.sigma_n, dt,
                          factor=float("inf"), replay="measured")
    row = {"t": t, "version": int(getattr(ctl.model, "version", 0) or 0), "std": ctl.std.tolist(),
           "sigma": ctl.sigma_sched.tolist()}
    if "score" in out:
        row.update(exact=out["score"].tolist(), linearized=out["running"].tolist())
    return row


def realized_table(run: dict, t_adapt_s: float) -> list[dict]:
    """Per phase, medians over the cycles in the adapted window (from T_a to the phase's end) of
    :func:`realized_check`'s per-joint figures (N*m)."""
    rows, rc = [], [r for r in run.get("realized_check", []) if "exact" in r]
    bounds = np.concatenate([[0.0], np.cumsum([s for _, s in run["phases"]])])
    for i, (kg, _) in enumerate(run["phases"]):
        sel = [r for r in rc if bounds[i] + t_adapt_s <= r["t"] < bounds[i + 1]]
        if sel:
            rows.append({"phase": i, "payload_kg": kg, "cycles": len(sel),
                         **{k: np.median([r[k] for r in sel], axis=0).tolist()
                            for k in ("exact", "linearized", "std", "sigma")}})
    return rows


def phase_table(runs: dict[str, dict], ref: str = "fixed", settle_s: float = 0.5,
                t_adapt_s: float | None = None) -> list[dict]:
    """Per configuration and phase, over three windows: "phase" (the whole phase, after
    ``settle_s`` from the run's start), "late" (its second half) and "adapted" (from the phase's
    start + T_a to its end; T_a = ``t_adapt_s``, default the run's :func:`adaptation_time`):
    joint RMSE, mean K_P cut against ``ref`` (1 - mean_j K_P,j / K_P,ref,j over the same window),
    mean sigma (N*m, mean over joints), the fraction of ticks in the following-error FAULT hold,
    the model version at the window's end, and (online runs) ``first_swap_s``: the time from
    the phase's start to the first version swapped in during the phase (None: none)."""
    rows = []
    bounds = np.concatenate([[0.0], np.cumsum([s for _, s in runs[ref]["phases"]])])
    for key, r in runs.items():
        s, sr = r["series"], runs[ref]["series"]
        ta = t_adapt_s if t_adapt_s is not None else r.get("t_adapt_s", runs[ref].get("t_adapt_s", 0.0))
        for i, (kg, _) in enumerate(r["phases"]):
            a, b = max(bounds[i], settle_s), bounds[i + 1]
            swaps = [w["t"] - bounds[i] for w in r.get("swaps", []) if bounds[i] < w["t"] < b]  # at t = start: fitted before the change
            for part, lo in (("phase", a), ("late", (a + b) / 2), ("adapted", max(a, bounds[i] + ta))):
                m = (s["t"] >= lo) & (s["t"] < b)
                mr = (sr["t"] >= lo) & (sr["t"] < b)
                if not m.any():
                    continue
                rows.append({
                    "config": key, "phase": i, "payload_kg": kg, "window": part,
                    "t0_s": float(lo - bounds[i]), "t1_s": float(b - bounds[i]),
                    "rmse_mrad": 1e3 * float(np.sqrt(np.mean(s["err"][m] ** 2))),
                    "rmse_ref_mrad": 1e3 * float(np.sqrt(np.mean(sr["err"][mr] ** 2))),
                    "kp_cut": float(1.0 - np.mean(s["kp"][m].mean(0) / sr["kp"][mr].mean(0))),
                    "sigma_mean": float(s["sigma"][m].mean()),
                    # following-error FAULT (latched stiff hold): err is then the hold error,
                    # not tracking of the reference
                    "fault_fraction": float(np.mean(s["mode"][m] == int(Mode.FAULT))),
                    "version_end": int(s["version"][m][-1]),
                    "first_swap_s": float(swaps[0]) if swaps else None})
    return rows


def goal_rows(table: list[dict], ref: str = "fixed", window: str = "adapted") -> list[dict]:
    """The issue's goal per (configuration, phase) on ``window`` (default after adaptation):
    met when the RMSE is no worse than ``ref``'s over the same window, the K_P cut is at least
    :data:`GOAL_KP_CUT` and no tick is in FAULT."""
    out = []
    for r in table:
        if r["config"] == ref or r["window"] != window:
            continue
        ok_rmse = r["rmse_mrad"] <= r["rmse_ref_mrad"]
        ok_cut = r["kp_cut"] >= GOAL_KP_CUT
        out.append({"config": r["config"], "phase": r["phase"], "payload_kg": r["payload_kg"],
                    "window": window, "met": bool(ok_rmse and ok_cut and r["fault_fraction"] == 0.0),
                    "rmse_ok": bool(ok_rmse), "cut_ok": bool(ok_cut)})
    return out


def plot(runs: dict[str, dict], path: str) -> None:
    """Error (RMS over joints), K_P of joint 2 relative to K_max, sigma of joint 2, model
    version and payload against time (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(5, 1, figsize=(11, 11), sharex=True)
    for r in runs.values():
        s = r["series"]
        ax[0].plot(s["t"], 1e3 * np.sqrt(np.mean(s["err"] ** 2, axis=1)), lw=0.7, label=r["label"])
        ax[1].plot(s["t"], s["kp"][:, 1], lw=0.7)
        ax[2].semilogy(s["t"], np.maximum(s["sigma"][:, 1], 1e-3), lw=0.7)
        ax[3].step(s["t"], s["version"], where="post", lw=0.9)
    s = next(iter(runs.values()))["series"]
    ax[4].step(s["t"], s["payload"], where="post", color="k")
    for a, lab in zip(ax, ("RMS joint error (mrad)", "K_P joint 2 (N*m/rad)", "sigma joint 2 (N*m)",
                           "model version", "payload (kg)"), strict=True):
        a.set_ylabel(lab, fontsize=8)
        a.grid(alpha=0.3)
    ax[0].legend(fontsize=7)
    ax[-1].set_xlabel("sim time (s)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None, help="scenario YAML (default: config/scenario_vgain.yaml)")
    ap.add_argument("--phases", default="5:21,12:21,0:21,15:21,8:21", help="payload schedule kg:seconds,...")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated, from {list(CONFIGS)}")
    ap.add_argument("--cycle-s", type=float, default=0.5, help="sim seconds between learner cycles")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--learner", default="", help="OnlineConfig overrides, e.g. 'features=0,linear=0'; "
                    "a per-joint tuple with ';' between values, e.g. 'k_max=900;900;500;500;100;100;50'")
    ap.add_argument("--payload-margin-kg", type=float, default=PAYLOAD_MARGIN_KG,
                    help="controller gain floor: the payload change (kg) every joint must hold "
                         "within half the following-error limit (core/gain_floor.py); 0 = off")
    ap.add_argument("--json", default=None, help="write the phase table and learner metrics here")
    ap.add_argument("--png", default=None, help="write the plot here")
    ap.add_argument("--series", default=None, help="write the logged series (100 Hz) of every run here (.npz)")
    a = ap.parse_args(argv)
    cfg = load_config(a.config)
    phases = parse_phases(a.phases)
    learner_opts = parse_learner(a.learner)   # a bad option is refused before any run starts
    runs = {}
    for key in a.configs.split(","):
        runs[key] = r = run_online(cfg, key, phases, a.cycle_s, a.seed, learner_opts=learner_opts,
                                   payload_margin_kg=a.payload_margin_kg, realized=True)
        print(f"{r['label']}: {'DIVERGED ' if r['diverged'] else ''}{r['wall_s']:.1f} s wall"
              + (f", learner {r['learner']['accepted']} accepted / {r['learner']['rejected']} rejected, "
                 f"{len(r['plant_fit_refused'])} refused by the plant check, "
                 f"training pause {r['pause_s']:.1f} s" if r["learner"] else ""), flush=True)
    ref = "fixed" if "fixed" in runs else next(iter(runs))
    table = phase_table(runs, ref)
    goals = goal_rows(table, ref)
    print(f"after adaptation = from T_a = {runs[ref]['t_adapt_s']:.2f} s after each phase's start "
          f"(reference period {runs[ref]['period_s']:.2f} s + held-out window + one cycle)")
    for row in table:
        fs = row["first_swap_s"]
        print(f"{row['config']:>12} phase {row['phase']} {row['payload_kg']:4.1f} kg {row['window']:>7} "
              f"[{row['t0_s']:5.2f}, {row['t1_s']:5.2f}) s: "
              f"RMSE {row['rmse_mrad']:7.3f} mrad (ref {row['rmse_ref_mrad']:7.3f}), K_P cut {100 * row['kp_cut']:5.1f} %, "
              f"sigma {row['sigma_mean']:.3f} N*m, version {row['version_end']}, "
              f"FAULT {100 * row['fault_fraction']:.0f} % of ticks"
              + (f", first swap {fs:.2f} s" if fs is not None else ""))
    for key, r in runs.items():
        for row in realized_table(r, r["t_adapt_s"]):
            r.setdefault("realized_table", []).append(row)
            print(f"{key:>12} phase {row['phase']} {row['payload_kg']:4.1f} kg adapted, medians of {row['cycles']} "
                  "cycles, joints 1-n (N*m): realized error exact " + " ".join(f"{v:.3g}" for v in row["exact"])
                  + " | linearized " + " ".join(f"{v:.3g}" for v in row["linearized"])
                  + " | model std " + " ".join(f"{v:.3g}" for v in row["std"])
                  + " | sigma " + " ".join(f"{v:.3g}" for v in row["sigma"]))
    for g in goals:
        print(f"goal ({g['window']}) {g['config']} phase {g['phase']} {g['payload_kg']:.1f} kg: "
              f"{'met' if g['met'] else 'NOT met'} (RMSE {'ok' if g['rmse_ok'] else 'worse'}, "
              f"cut {'ok' if g['cut_ok'] else '< 40 %'})")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({
            "phases": phases, "cycle_s": a.cycle_s, "seed": a.seed, "learner": a.learner,
            "payload_margin_kg": a.payload_margin_kg, "table": table, "goal": goals,
            "runs": {k: {kk: v for kk, v in r.items() if kk != "series"} for k, r in runs.items()}},
            indent=1, default=float))
    if a.png:
        plot(runs, a.png)
    if a.series:
        Path(a.series).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(a.series, **{f"{k}.{kk}": v for k, r in runs.items() for kk, v in r["series"].items()},
                            **{f"{k}.swap_t": np.array([w["t"] for w in r["swaps"]]) for k, r in runs.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
