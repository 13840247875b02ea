"""The variance-scheduled scenario in one process, without ROS: a quick screen for models.

The same configuration (``config/scenario_vgain.yaml``) drives the classes the nodes run - the
PyBullet plant of ``sim_bridge`` (:class:`~dynlearn_ros.sim.plant.SimPlant`, with the scenario's
payload and friction) and the control law of ``computed_torque``
(:func:`~dynlearn_ros.core.assembly.build_controller` from the node's parameter spec: the same
defaults and checks; only the node's I/O parameters - status, stale timeout, QoS - have no effect) -
stepped in lockstep in a plain loop: read the state, one controller tick, one plant step.
Lockstep over ROS does exactly this exchange, so the joint statistics agree with
``dynlearn-ros report vgain`` (checked for (a), (b), (c), (e): per-joint RMSE within 0.01 mrad,
the same K_P); the end-effector column and everything about the ROS graph (QoS, executors,
process start-up, the bridge's clamps and stats) are only in the real report. A 20 s
configuration takes 1-3 s here against ~15 s through ROS.

    dynlearn-ros report vgain-inproc --configs a,c,d --duration 20
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from dynlearn_ros.core.assembly import build_analytic, build_controller, builtin_reference
from dynlearn_ros.core.config import COMPUTED_TORQUE_SPEC, robot_context, validate
from dynlearn_ros.core.inverse_model import InverseModel
from dynlearn_ros.paths import resolve_model_dir
from dynlearn_ros.scenarios.vgain import controller_params, kp_cut
from dynlearn_ros.scenarios.vgain_config import ScenarioConfig, load_config
from dynlearn_ros.sim.plant import SimPlant


def _model(kind: str, model_dir: str, joint_names, analytic) -> InverseModel:
    if kind == "analytic":
        return analytic
    from dynlearn_ros.runtime.registry import load_inverse_model

    return load_inverse_model(kind, resolve_model_dir(model_dir), joint_names)


def run_inprocess(cfg: ScenarioConfig, key: str, duration_s: float | None = None,
                  model_dir: str | None = None) -> dict:
    """Run configuration ``key`` for ``duration_s`` (default: the YAML's) seconds of sim time.

    ``model_dir`` overrides the configuration's (to screen a candidate model). Returns the
    controller summary (``ComputedTorqueController.summary``: joint RMSE (rad), mean K_P, mean
    std, counters) plus ``sim_time_s``, ``wall_s`` and ``diverged`` (state non-finite or more
    than 3 rad from the reference: the run stops there)."""
    p = controller_params(cfg, key)
    if p.get("reference", "pick_place") != "pick_place":
        raise ValueError(f"configuration {key}: only the pick_place reference is modelled in-process")
    if model_dir is not None:
        p["model_dir"] = model_dir
    spec = cfg.spec
    n = spec.n
    known = {s.name for s in COMPUTED_TORQUE_SPEC}
    if set(p) - known:
        raise ValueError(f"configuration {key}: unknown computed_torque parameters {sorted(set(p) - known)}")
    config = validate({**p, "reference": "pick_place"}, robot_context(p.get("robot", cfg.robot), p.get("urdf_path", "")))
    analytic = build_analytic(config)
    model = _model(config.model_kind, config.model_dir, spec.joint_names, analytic)
    ctl = build_controller(config, model, analytic, builtin_reference(config, spec.home))
    dt = config.control_period_s
    plant = SimPlant(cfg.robot, dt=dt, friction_viscous=cfg.friction_viscous,
                     friction_coulomb=cfg.friction_coulomb, coulomb_velocity_eps=cfg.coulomb_velocity_eps,
                     payload_kg=cfg.payload_kg)
    steps = int(round((duration_s or cfg.duration_s) / dt))
    q, qd = np.zeros(n), np.zeros(n)
    diverged, k = False, 0
    wall0 = time.perf_counter()
    try:
        plant.reset(spec.home, np.zeros(n))
        for k in range(steps):
            plant.state_into(q, qd)
            if k and not (np.isfinite(q).all() and np.abs(ctl.err).max() < 3.0):
                diverged = True
                break
            ctl.step(q, qd, k * dt, 0.0)
            plant.step(ctl.tau)
    finally:
        plant.close()
    return {**ctl.summary(), "key": key, "label": cfg.configurations[key].get("label", key),
            "model_kind": model.kind, "sim_time_s": k * dt if diverged else steps * dt,
            "diverged": diverged, "wall_s": time.perf_counter() - wall0}


def screen(config: str | None = None, configs: Sequence[str] | None = None, duration: float | None = None,
           model_dir: str | None = None, emit: Callable[[str], None] = print) -> dict:
    """Run the configurations ``configs`` (default: all not marked skip) of the scenario YAML
    ``config`` in process; ``model_dir`` overrides the learned ones' model. One line per
    configuration through ``emit``; returns {key: summary} (``dynlearn-ros report vgain-inproc``)."""
    cfg = load_config(config)
    keys = list(configs) if configs else [k for k, c in cfg.configurations.items() if not c.get("skip")]
    rows: dict = {}
    for key in keys:
        override = model_dir if model_dir and cfg.configurations[key].get("controller", {}).get(
            "model_kind", "analytic") != "analytic" else None
        rows[key] = r = run_inprocess(cfg, key, duration, model_dir=override)
        if r["diverged"]:   # the statistics cover only what ran before; do not print them as a result
            emit(f"{r['label']}: DIVERGED at {r['sim_time_s']:.3f} s of sim time "
                 f"(error > 3 rad or non-finite state), {r['wall_s']:.1f} s wall")
            continue
        b = cfg.baseline(key)
        cut = f", K_P cut {100 * kp_cut(rows, key, b):.1f} % vs ({b})" if b in rows and b != key else ""
        emit(f"{r['label']}: RMSE {1e3 * r['rmse_rad_all']:.2f} mrad "
             f"(per joint {np.round(1e3 * np.asarray(r['joint_rmse_rad']), 2).tolist()}){cut}, "
             f"fallbacks {r['counters']['model_fallback']}, {r['wall_s']:.1f} s wall")
    return rows
