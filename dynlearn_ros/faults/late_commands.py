"""Why the realtime loop runs away on a loaded machine: late commands replayed in one process.

In realtime stepping the bridge publishes state k at deadline k and steps at deadline k+1 with
the newest command that has arrived; a command that misses its deadline is applied one period
later (the plant runs one more step on the previous one). :func:`replay` reproduces exactly that
without ROS: the PyBullet plant of ``sim_bridge`` and the control law of ``computed_torque``
(default parameters, the built-in sine reference), where each command is late with probability
``late_fraction`` (independently per tick, seeded).

:func:`coupled_rates` gives the reason it matters: the default gains are per joint, scaled by
the diagonal of M(home) (K = I omega^2 with omega = 40 rad/s, K_D for damping ratio 1), but the
arm's inertia is coupled, so the closed loop's fastest modes are the eigenvalues of M^-1 K_P
(natural frequencies) and M^-1 K_D (damping rates): for the iiwa at K_max about 135 rad/s and
900 1/s, against 40 and 80 for each joint alone. A damping rate of 900 1/s times a 1 ms period
is 0.9 - stable when every command is on time, close to the limit with a one-period delay.
Measured with this replay (5 s, seed 0) without the controller's chatter guard: on time calm
(|qd| <= 0.31 v_max); 20, 50 and 100 % late commands: joint 3 beyond twice its velocity limit
after 2.2-2.6 s (the controller's plausibility bound: its states would be rejected) while the
position error stays below 25 mrad - a velocity chatter, the fast mode; with K_D / 3 (zeta / 3)
50 % late stays calm. With the guard (core/control.py CHATTER_LEVEL: K_D / 3 while the
velocity chatters) 20, 50 and 100 % late stay below 0.75 v_max. docs/safety.md ("Realtime under
load").

:func:`replay_starved` is the overloaded machine of the CPU-hog fault row: the controller sees
only some states (gaps of many periods, log-normal), its command reaches the plant ``lag``
periods after the state it answers and is held until the next one, and past the robot's command
watchdog the plant brakes, as sim_bridge does. It runs the node's whole late path
(core/safety.py held_delay, unfollowed_time, LatenessScale; the controller's late law and chatter
guard) or, with ``late_law=False``, the law as designed.
"""

from __future__ import annotations

import numpy as np

from dynlearn_ros.core.analytic import RigidBodyModel
from dynlearn_ros.core.assembly import build_analytic, build_controller, builtin_reference
from dynlearn_ros.core.config import ControllerConfig, robot_context, validate
from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.core.safety import AppliedCommandMatch, LatenessScale, held_delay, unfollowed_time
from dynlearn_ros.core.trajectories import fit_to_limits


def default_config(robot: str = "iiwa", **overrides) -> ControllerConfig:
    """The controller node's configuration for ``robot`` with parameter ``overrides``."""
    return validate({"robot": robot, **overrides}, robot_context(robot, ""))


def coupled_rates(config: ControllerConfig, robot: str = "iiwa") -> dict[str, np.ndarray]:
    """Closed-loop rates at the robot's home pose with K_P = k_max: ``omega`` = sqrt|eig(M^-1 K_P)|
    (rad/s) and ``damping`` = |eig(M^-1 K_D)| (1/s), K_D = zeta sqrt(k_max), each (n,) sorted
    descending; ``omega_diag`` = sqrt(k_max / diag M) for comparison."""
    spec = robot_spec(robot)
    m = RigidBodyModel(spec.urdf_path, spec.joint_names).mass_matrix(spec.home)
    kd = config.zeta * np.sqrt(config.k_max)
    return {
        "omega": np.sort(np.sqrt(np.abs(np.linalg.eigvals(np.linalg.solve(m, np.diag(config.k_max))))))[::-1],
        "damping": np.sort(np.abs(np.linalg.eigvals(np.linalg.solve(m, np.diag(kd)))))[::-1],
        "omega_diag": np.sqrt(config.k_max / np.diag(m)),
    }


def replay(late_fraction: float, seconds: float = 5.0, seed: int = 0, robot: str = "iiwa", guard: bool = True,
           detect: bool = False, **overrides) -> dict:
    """Realtime stepping with a fraction of late commands (see the module docstring); ``guard``:
    the controller's chatter guard on, as the node runs it (core/control.py CHATTER_LEVEL);
    ``detect``: the node's late path for lateness the stamps do not show (every state is seen,
    one period apart): each state's effort (the plant's applied torque, as sim_bridge publishes
    it) against the commands sent (core/safety.py AppliedCommandMatch) -> LatenessScale -> the
    late law.

    Returns {"late_commands" (commands applied a period late), "ticks", "max_qd_over_limit" (max over time and joints of |qd| /
    velocity limit), "first_over_2x_s" (sim time s when a joint first exceeded twice its
    velocity limit, the controller's plausibility bound; None if never), "joint" (that joint's
    index), "max_abs_err_rad", "tracking_faults", "chatter_ticks" (ticks with K_D lowered),
    "late_ticks" (ticks under the late law), "detected_late" (states whose effort was an older
    command)}."""
    from dynlearn_ros.sim.plant import SimPlant

    if not 0.0 <= late_fraction <= 1.0:
        raise ValueError(f"late_fraction must be in [0, 1], got {late_fraction}")
    rng = np.random.default_rng(seed)
    spec = robot_spec(robot)
    config = default_config(robot, **overrides)
    analytic = build_analytic(config)
    reference, _ = fit_to_limits(builtin_reference(config, spec.home), spec.lower, spec.upper)
    ctl = build_controller(config, analytic, analytic, reference)
    if guard:
        ctl.set_chatter_guard(spec.velocity_limits)
    dt = config.control_period_s
    match, lateness = AppliedCommandMatch(), LatenessScale(dt)
    if detect:
        ctl.enable_late_law(robot_context(robot, "").inertia)
    plant = SimPlant(robot, dt=dt)
    n = spec.n
    q, qd = np.zeros(n), np.zeros(n)
    applied = None   # the command the plant runs on
    max_ratio, first, joint, late = 0.0, None, None, 0
    steps = int(round(seconds / dt))
    try:
        plant.reset(spec.home, np.zeros(n))
        for k in range(steps):
            plant.state_into(q, qd)
            ratio = np.abs(qd) / spec.velocity_limits
            max_ratio = max(max_ratio, float(ratio.max()))
            if first is None and ratio.max() > 2.0:
                first, joint = k * dt, int(np.argmax(ratio))
            if detect:
                held = match.held_delay(plant.applied_torque, dt) if k else None
                ctl.set_late_bandwidth(lateness.update(dt if held is None else held))
            ctl.step(q, qd, k * dt, k * dt)
            fresh = ctl.tau.copy()
            match.record(fresh)
            if applied is not None and rng.uniform() < late_fraction:
                late += 1        # missed its deadline: this step still runs on the previous command
                plant.step(applied)
            else:
                plant.step(fresh)
            applied = fresh      # it has arrived by the next deadline
    finally:
        plant.close()
    return {"late_commands": late, "ticks": steps, "max_qd_over_limit": max_ratio, "first_over_2x_s": first,
            "joint": joint, "max_abs_err_rad": float(np.max(ctl.stats.max_abs_err)),
            "tracking_faults": ctl.counters.tracking_fault, "chatter_ticks": ctl.counters.chatter_ticks,
            "late_ticks": ctl.counters.late_ticks, "detected_late": match.late}


def replay_starved(median_gap: float, seconds: float = 5.0, seed: int = 0, robot: str = "iiwa", lag: int = 2,
                   spread: float = 0.9, on_time: float = 0.1, late_law: bool = True,
                   command_timeout_ms: float = 20.0, payload_kg: float = 0.0, guard: bool = True,
                   model_kind: str = "analytic", model_dir: str = "") -> dict:
    """A starved realtime loop (module docstring): the controller reads the state every g
    periods, g = 1 with probability ``on_time``, else round(lognormal(ln median_gap, spread))
    (at least 1); its command is applied ``lag`` periods after that state and held until the
    next one arrives; ``command_timeout_ms`` after the last arrival the plant brakes (sim_bridge's
    watchdog) until a command arrives. ``late_law``: the node's late path on (False: the law
    as designed); ``guard``: the chatter guard on; ``payload_kg``: a mass at the end effector
    the controller's analytic model does not know; ``model_kind`` / ``model_dir``: the
    feed-forward model, as the node's parameters (a shipped model's name or a directory).

    Returns {"ticks" (controller ticks), "steps", "brake_steps", "late_ticks",
    "max_qd_over_limit", "max_abs_err_rad", "tracking_faults", "reference_paused_s", "chatter_ticks"}."""
    from dynlearn_ros.sim.plant import SimPlant

    if median_gap < 1 or lag < 1:
        raise ValueError(f"median_gap and lag must be >= 1, got {median_gap}, {lag}")
    rng = np.random.default_rng(seed)
    spec = robot_spec(robot)
    config = default_config(robot, command_timeout_ms=command_timeout_ms, model_kind=model_kind, model_dir=model_dir)
    analytic = build_analytic(config)
    model = analytic
    if model_kind != "analytic":
        from dynlearn_ros.paths import resolve_model_dir
        from dynlearn_ros.runtime.registry import load_inverse_model

        model = load_inverse_model(model_kind, resolve_model_dir(model_dir), spec.joint_names)
    reference, _ = fit_to_limits(builtin_reference(config, spec.home), spec.lower, spec.upper)
    ctl = build_controller(config, model, analytic, reference)
    if guard:
        ctl.set_chatter_guard(spec.velocity_limits)
    ctl.enable_late_law(robot_context(robot, "").inertia)
    lateness = LatenessScale(config.control_period_s)
    dt, n = config.control_period_s, spec.n
    timeout_steps = int(round(config.command_timeout_s / dt))
    plant = SimPlant(robot, dt=dt, payload_kg=payload_kg)
    q, qd = np.zeros(n), np.zeros(n)
    pending: list[tuple[int, np.ndarray]] = []   # (step it is applied from, command)
    applied, last_arrival, k_prev, next_read = None, 0, None, 0
    max_ratio, steps = 0.0, int(round(seconds / dt))
    try:
        plant.reset(spec.home, np.zeros(n))
        for k in range(steps):
            plant.state_into(q, qd)
            max_ratio = max(max_ratio, float(np.max(np.abs(qd) / spec.velocity_limits)))
            if k == next_read:
                if late_law and k_prev is not None:
                    gap = (k - k_prev) * dt   # stamps and arrivals advance together
                    ctl.pause_reference(unfollowed_time(gap, gap, config.command_timeout_s))
                    ctl.set_late_bandwidth(lateness.update(held_delay(gap, gap, dt, False, config.command_timeout_s)))
                k_prev = k
                ctl.step(q, qd, k * dt, k * dt)
                pending.append((k + lag, ctl.tau.copy()))
                g = 1 if rng.uniform() < on_time else round(rng.lognormal(np.log(median_gap), spread))
                next_read = k + max(1, int(g))
            while pending and pending[0][0] <= k:
                applied = pending.pop(0)[1]
                last_arrival = k
            if applied is None:
                plant.step(ctl.tau)   # before the first command arrives: the first one (a hold at home)
            elif k - last_arrival >= timeout_steps:
                plant.brake_step()
            else:
                plant.step(applied)
        brake_steps = int(plant.brake_steps)
    finally:
        plant.close()
    return {"ticks": ctl.counters.ticks, "steps": steps, "brake_steps": brake_steps,
            "late_ticks": ctl.counters.late_ticks, "max_qd_over_limit": max_ratio,
            "max_abs_err_rad": float(np.max(ctl.stats.max_abs_err)), "tracking_faults": ctl.counters.tracking_fault,
            "reference_paused_s": ctl.counters.reference_paused_s, "chatter_ticks": ctl.counters.chatter_ticks}
