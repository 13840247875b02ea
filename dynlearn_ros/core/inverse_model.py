"""The inverse-model interface the computed-torque controller calls every tick.

A model maps the measured state and the reference to a feed-forward torque mean and a
per-joint predictive standard deviation. All arrays are preallocated by the caller and
filled in place: ``predict`` must not allocate on the control path.

Stateful models (the ac-RKN) also see the torque that was actually sent through
:meth:`InverseModel.commit`, so their belief can be propagated with the executed action.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

#: names of the feed-forward models the controller can run (its ``model_kind`` parameter):
#: "analytic" is built from the URDF; the learned kinds are loaded by
#: :mod:`dynlearn_ros.runtime.registry`, which must offer exactly the others (a test checks).
MODEL_KINDS: tuple[str, ...] = ("analytic", "acrkn", "svdkl")


@dataclass
class InverseQuery:
    """One control tick's inputs, preallocated once per controller (all (n,) float64).

    q, qd:              measured joint position (rad) and velocity (rad/s) at time t
    q_des, qd_des, qdd_des:  reference at time t (rad, rad/s, rad/s^2)
    q_des_next, qd_des_next: reference at time t + dt (what the next observation should be)
    tau_prev:           torque commanded at the previous tick (N*m)
    dt:                 control period (s)
    """

    n: int
    dt: float = 1e-3
    q: np.ndarray = field(init=False)
    qd: np.ndarray = field(init=False)
    q_des: np.ndarray = field(init=False)
    qd_des: np.ndarray = field(init=False)
    qdd_des: np.ndarray = field(init=False)
    q_des_next: np.ndarray = field(init=False)
    qd_des_next: np.ndarray = field(init=False)
    tau_prev: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        for name in ("q", "qd", "q_des", "qd_des", "qdd_des", "q_des_next", "qd_des_next", "tau_prev"):
            setattr(self, name, np.zeros(self.n))


class InverseModel(abc.ABC):
    """Feed-forward torque model: tau_ff (N*m) and its predictive std (N*m) per joint.

    Implementations: ``core.analytic.AnalyticInverseModel`` (Pinocchio RNEA),
    ``runtime.acrkn.AcrknInversePredictor``, ``runtime.svdkl.SvdklPredictor``.
    Learned models are built through ``runtime.registry.load_inverse_model``.
    """

    #: model kind as written in metadata.json / the controller's ``model_kind`` parameter
    kind: str = "abstract"
    #: model_version of a learned model's directory (metadata.json); 0 for models without one
    #: (the analytic model)
    version: int = 0

    def __init__(self, joint_names: tuple[str, ...]) -> None:
        self.joint_names = tuple(joint_names)
        self.n = len(self.joint_names)

    @abc.abstractmethod
    def predict(self, query: InverseQuery, mean_out: np.ndarray, std_out: np.ndarray) -> bool:
        """Fill ``mean_out`` (n,) N*m and ``std_out`` (n,) N*m; return False if the result
        is unusable (the caller then falls back and counts it). Must not raise on finite input."""

    def commit(self, tau_applied: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Feed back the torque actually commanded this tick (stateful models)."""

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget any recurrent state (called on start and after a safety stop)."""

    def noise_and_signal_std(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(sigma_n, sigma_f) per joint (N*m) from the model's metadata, if it has them.

        The gain schedule uses these as its default sigma bounds when present."""
        return None
