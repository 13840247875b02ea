"""The one place that turns a :class:`~dynlearn_ros.core.config.ControllerConfig` into the
controller's parts: the analytic model, the gain schedule, the run-time :class:`Tuning`, the
built-in reference and the :class:`ComputedTorqueController`. The computed_torque node and the
in-process scenario both build through here, so they run the same controller.
"""

from __future__ import annotations

import numpy as np

from dynlearn_ros.core.analytic import AnalyticInverseModel
from dynlearn_ros.core.config import ControllerConfig
from dynlearn_ros.core.control import ComputedTorqueController, Tuning
from dynlearn_ros.core.gain_floor import payload_gain_floor, payload_within_torque_limits
from dynlearn_ros.core.inverse_model import InverseModel
from dynlearn_ros.core.residual import ResidualSigma
from dynlearn_ros.core.robots import ee_com_local, robot_spec
from dynlearn_ros.core.schedule import GainSchedule
from dynlearn_ros.core.trajectories import HoldReference, Reference, SineReference, WaypointReference


def build_analytic(config: ControllerConfig) -> AnalyticInverseModel:
    """The URDF rigid-body model (the fallback feed-forward and the hold torque), reporting the
    std ``config.analytic_std``."""
    spec = robot_spec(config.robot)
    analytic = AnalyticInverseModel(config.urdf_path or str(spec.urdf_path), spec.joint_names, std=0.0)
    analytic.std[:] = config.analytic_std
    return analytic


def build_schedule(config: ControllerConfig, model: InverseModel) -> GainSchedule:
    """Eq. 7-8 from the configuration; sigma_n, sigma_f from ``model``'s metadata when
    ``use_model_sigma_bounds`` and the model has them. Raises ValueError if inconsistent."""
    sigma_n, sigma_f = config.sigma_n, config.sigma_f
    bounds = model.noise_and_signal_std() if config.use_model_sigma_bounds else None
    if bounds is not None:
        sigma_n, sigma_f = (np.asarray(b, dtype=np.float64).reshape(config.n) for b in bounds)
    k_min, k_max = config.k_min, config.k_max
    if config.payload_margin_kg > 0:   # core/gain_floor.py: the stiffness a payload drop needs
        spec = robot_spec(config.robot)
        urdf = config.urdf_path or str(spec.urdf_path)
        com = ee_com_local(spec)
        payload_within_torque_limits(urdf, spec.joint_names, spec.ee_link, com, config.payload_margin_kg,
                                     config.torque_limits)
        floor = payload_gain_floor(urdf, spec.joint_names, spec.ee_link, com, config.payload_margin_kg,
                                   config.max_tracking_error)
        k_min, k_max = np.maximum(k_min, floor), np.maximum(k_max, floor)
    return GainSchedule(k_min=k_min, k_max=k_max, sigma_n=sigma_n, sigma_f=sigma_f,
                        c=config.schedule_c, zeta=config.zeta, fixed=config.gain_mode == "fixed")


def build_tuning(config: ControllerConfig, model: InverseModel) -> Tuning:
    """Everything the controller may change at run time, for ``model`` (its sigma bounds)."""
    return Tuning.make(build_schedule(config, model), config.torque_limits, config.control_period_s,
                       config.max_tracking_error, config.sigma_release_s, config.stale_timeout_s,
                       analytic_std=config.analytic_std, torque_rate_limit=config.torque_rate_limit)


def build_controller(config: ControllerConfig, model: InverseModel, analytic: AnalyticInverseModel,
                     reference: Reference | None = None) -> ComputedTorqueController:
    """The controller for ``config`` with feed-forward ``model`` (may be ``analytic`` itself);
    ``reference`` None: set at the first state (:func:`builtin_reference`)."""
    return ComputedTorqueController(analytic, model, build_schedule(config, model), reference,
                                    config.torque_limits, dt=config.control_period_s,
                                    stale_timeout_s=config.stale_timeout_s, settle_s=config.settle_s,
                                    sigma_release_s=config.sigma_release_s,
                                    max_error=config.max_tracking_error,
                                    torque_rate_limit=config.torque_rate_limit,
                                    residual=build_residual(config), ff_blend_s=config.ff_blend_s)


def build_residual(config: ControllerConfig) -> ResidualSigma | None:
    """The realized-error estimator (core/residual.py) when ``residual_window_s`` > 0, else None."""
    if config.residual_window_s <= 0:
        return None
    spec = robot_spec(config.robot)
    return ResidualSigma(config.urdf_path or str(spec.urdf_path), spec.joint_names,
                         config.control_period_s, config.residual_filter_s, config.residual_window_s)


def builtin_reference(config: ControllerConfig, q0: np.ndarray) -> Reference:
    """The ``reference`` parameter's motion starting at ``q0`` (n,) rad: a sine around q0, the
    pick-and-place loop from q0 through ``waypoints``, or a hold at q0."""
    if config.reference == "sine":
        return SineReference(q0, config.sine_amplitude, config.sine_freq_hz, ramp_s=config.ramp_s)
    if config.reference == "pick_place":
        return WaypointReference(np.vstack([q0, config.waypoints]), config.move_s, config.dwell_s, loop=True)
    return HoldReference(q0)
