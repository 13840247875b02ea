"""Analytic rigid-body inverse dynamics from a URDF with Pinocchio.

tau = M(q) qdd + C(q, qd) qd + g(q), by RNEA (one ``pin.rnea`` call, data created once).
The model knows only the URDF: an unmodelled payload or joint friction shows up as
tracking error, which the learned models are there to remove.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pinocchio as pin

from dynlearn_ros.core.inverse_model import InverseModel, InverseQuery


class RigidBodyModel:
    """Pinocchio model of the movable joints ``joint_names`` of a URDF (other joints absent).

    All methods take and fill (n,) float64 arrays in the order of ``joint_names``.
    """

    def __init__(self, urdf_path: str | Path, joint_names: Sequence[str]) -> None:
        model = pin.buildModelFromUrdf(str(urdf_path))
        names = [model.names[i] for i in range(1, model.njoints)]
        missing = [j for j in joint_names if j not in names]
        if missing:
            raise ValueError(f"{urdf_path}: joints {missing} not in the URDF (it has {names})")
        if any(model.joints[model.getJointId(j)].nq != 1 for j in joint_names):
            raise ValueError("only 1-DoF joints are supported")
        # Lock every joint not asked for, at its neutral position.
        lock = [model.getJointId(j) for j in names if j not in joint_names]
        if lock:
            model = pin.buildReducedModel(model, lock, pin.neutral(model))
        self.model = model
        self.data = model.createData()
        self.joint_names = tuple(joint_names)
        model_order = [model.names[i] for i in range(1, model.njoints)]
        # perm[k]: index in pinocchio's vector of joint_names[k]
        self._perm = np.array([model.idx_qs[model.getJointId(j)] for j in self.joint_names])
        self._identity = bool(np.array_equal(self._perm, np.arange(len(model_order))))
        self._q = np.zeros(model.nq)
        self._v = np.zeros(model.nv)
        self._a = np.zeros(model.nv)
        self._zero = np.zeros(len(self.joint_names))
        self._no_gravity = None   # (model, data) without gravity, for mass_times; built on first use

    def clone(self) -> RigidBodyModel:
        """The same robot without parsing the URDF again: this one's Pinocchio model (read only
        in every method, so shared) with its own data and buffers (safe in another thread)."""
        other = object.__new__(RigidBodyModel)
        other.__dict__.update(self.__dict__)
        other.data = self.model.createData()
        other._q, other._v, other._a = np.zeros_like(self._q), np.zeros_like(self._v), np.zeros_like(self._a)
        other._zero = np.zeros_like(self._zero)
        other._no_gravity = None
        return other

    @property
    def n(self) -> int:
        return len(self.joint_names)

    def _load(self, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        if self._identity:
            self._q[:] = q
            self._v[:] = qd
            self._a[:] = qdd
        else:
            self._q[self._perm] = q
            self._v[self._perm] = qd
            self._a[self._perm] = qdd

    def _store(self, src: np.ndarray, out: np.ndarray) -> np.ndarray:
        if self._identity:
            out[:] = src
        else:
            out[:] = src[self._perm]
        return out

    def rnea(self, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = M(q) qdd + C(q, qd) qd + g(q)   (N*m)."""
        self._load(q, qd, qdd)
        return self._store(pin.rnea(self.model, self.data, self._q, self._v, self._a), out)

    def gravity(self, q: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = g(q)   (N*m)."""
        self._load(q, self._zero, self._zero)
        return self._store(pin.computeGeneralizedGravity(self.model, self.data, self._q), out)

    def mass_times(self, q: np.ndarray, v: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = M(q) v   (N*m for v in rad/s^2): one RNEA pass at zero velocity on a copy of the
        model without gravity (RNEA(q, 0, v) = M(q) v + g(q); with g = 0 it is M(q) v alone),
        instead of RNEA and a gravity pass. Nothing allocated after the first call."""
        if self._no_gravity is None:
            m0 = pin.Model(self.model)
            m0.gravity = pin.Motion.Zero()
            self._no_gravity = (m0, m0.createData())
        m0, d0 = self._no_gravity
        self._load(q, self._zero, v)
        return self._store(pin.rnea(m0, d0, self._q, self._v, self._a), out)

    def mass_matrix(self, q: np.ndarray) -> np.ndarray:
        """M(q), (n, n) symmetric (kg*m^2); allocates: not for the control path."""
        self._load(q, self._v, self._a)
        m = pin.crba(self.model, self.data, self._q)
        m = np.triu(m) + np.triu(m, 1).T
        return m[np.ix_(self._perm, self._perm)]


class AnalyticInverseModel(InverseModel):
    """The URDF's rigid-body model as an :class:`InverseModel`.

    tau_ff = RNEA(q, qd, qdd_des): the torque that gives the reference acceleration at the
    measured state. Its predictive std is a fixed, configured per-joint value (N*m): the
    analytic model has no notion of its own error.
    """

    kind = "analytic"

    def __init__(self, urdf_path: str | Path, joint_names: Sequence[str], std: np.ndarray | float) -> None:
        super().__init__(tuple(joint_names))
        self.rbd = RigidBodyModel(urdf_path, joint_names)
        self.std = np.broadcast_to(np.asarray(std, dtype=np.float64), (self.n,)).copy()
        if not np.all(np.isfinite(self.std)) or np.any(self.std < 0):
            raise ValueError(f"analytic std must be finite and >= 0, got {self.std}")

    def predict(self, query: InverseQuery, mean_out: np.ndarray, std_out: np.ndarray) -> bool:
        self.rbd.rnea(query.q, query.qd, query.qdd_des, mean_out)
        std_out[:] = self.std
        return True
