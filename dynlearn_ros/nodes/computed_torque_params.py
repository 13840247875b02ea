"""The computed_torque node's gain and schedule parameters (declared with descriptors, validated).

Kept apart from the node so the node file stays about ROS I/O; defaults come from
:func:`dynlearn_ros.core.schedule.default_gains` and :data:`dynlearn_ros.core.control.DEFAULT_MAX_TRACKING_ERROR`.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from rclpy.node import Node

from dynlearn_ros.core.control import DEFAULT_MAX_TRACKING_ERROR
from dynlearn_ros.core.schedule import default_gains
from dynlearn_ros.nodes.params import ParameterError, declare, per_joint


def declare_gain_parameters(node: Node, inertia: np.ndarray, n: int) -> SimpleNamespace:
    """Declare k_min, k_max, zeta, sigma_n, sigma_f, schedule_c, max_tracking_error,
    sigma_release_s, gain_mode, use_model_sigma_bounds on ``node``; return their values
    (per-joint ones as (n,) arrays). ``inertia`` (n,) kg*m^2 sets the gain defaults."""
    # gains: defaults scale with the joint inertia at home, K = I * omega^2, so the light
    # wrist joints get gains they can take at 1 kHz
    k_min0, k_max0, zeta0 = default_gains(inertia)
    k_min = per_joint("k_min", declare(node, "k_min", k_min0.tolist(),
                      "stiffness at full confidence, per joint (N*m/rad)"), n)
    k_max = per_joint("k_max", declare(node, "k_max", k_max0.tolist(),
                      "stiffness at maximal uncertainty, per joint (N*m/rad)"), n)
    zeta = per_joint("zeta", declare(node, "zeta", zeta0.tolist(),
                     "K_D = zeta * sqrt(K_P); damping ratio = zeta / (2 sqrt(inertia))"), n)
    sigma_n = per_joint("sigma_n", declare(node, "sigma_n", [0.1], "std at which K_P = K_min "
                        "(N*m), per joint"), n)
    sigma_f = per_joint("sigma_f", declare(node, "sigma_f", [10.0], "std at which K_P reaches "
                        "its top (N*m), per joint"), n)
    c = per_joint("schedule_c", declare(node, "schedule_c", [3.0], "schedule steepness C (Eq. 8)"), n)
    max_err = per_joint("max_tracking_error", declare(
        node, "max_tracking_error", [DEFAULT_MAX_TRACKING_ERROR], "following-error limit per "
        "joint (rad): beyond it the controller latches a stiff hold at that position (analytic "
        "model, K_max) until a new reference_trajectory arrives; 0 = no limit"), n)
    if np.any(max_err < 0):
        raise ParameterError(f"parameter 'max_tracking_error': values must be >= 0 (0: no limit), got {max_err}")
    sigma_release_s = declare(node, "sigma_release_s", 0.0, "release time constant (s) of the "
                              "std envelope the schedule reads: a rising std raises the gains "
                              "at once, a falling one lowers them with this time constant; "
                              "0 = the raw std", lo=0.0, hi=60.0)
    gain_mode = declare(node, "gain_mode", "scheduled", "scheduled: Eq. 7-8; fixed: K_P = k_max",
                        choices=("scheduled", "fixed"))
    use_model_bounds = declare(node, "use_model_sigma_bounds", True, "take sigma_n, sigma_f "
                               "from the learned model's metadata when it has them")
    return SimpleNamespace(k_min=k_min, k_max=k_max, zeta=zeta, sigma_n=sigma_n, sigma_f=sigma_f, c=c,
                           max_tracking_error=max_err, sigma_release_s=sigma_release_s,
                           gain_mode=gain_mode, use_model_sigma_bounds=use_model_bounds)
