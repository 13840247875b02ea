"""The torque a point mass at the end effector adds, per kilogram: a regressor for online learning.

A payload of mass m at a point c fixed in the last link adds to the inverse dynamics exactly

    tau_p(q, qd, qdd) = m * Y(q, qd, qdd),     Y = J_c(q)^T (a_c - g)           (N*m per kg)
    a_c = J_c qdd + Jdot_c qd                   (the point's acceleration, m/s^2)

(a point mass has no rotational inertia), so a payload change is *linear in one number* with a
regressor the URDF gives. :mod:`dynlearn_ros.learning.online` appends Y's columns to the
correction's features: the correction then fits a payload with n coefficients (the true ones are
(m - m_trained) I) instead of approximating a smooth function with random features.

Kinematics of a serial chain of revolute joints, world frame, per joint i (0-based):
R_i, p_i the pose of joint i's frame (after its rotation), z_i its axis, r_i = p_c - p_i,
J_i = z_i x r_i, and the velocity products with w_i^- = sum_{k<i} z_k qd_k (the angular velocity
of the link that carries axis i) and v_i = sum_{k<i} z_k x (p_i - p_k) qd_k (the velocity of p_i):

    a_c = sum_i J_i qdd_i + ((w_i^- x z_i) x r_i + z_i x (v_c - v_i)) qd_i,   v_c = sum_i J_i qd_i

:func:`point_mass_regressor` is written once against a small set of array operations, and run by
:class:`NumpyOps` (float64, the trainer's features and the test against Pinocchio) and by
:class:`OnnxOps` (the same operations as ONNX nodes, appended to the exported graph), so the
graph the controller runs computes the features the trainer fitted on, by construction.
Vectors are (B, 3, 1) columns, rotations (B, 3, 3) or constant (3, 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from onnx import helper, numpy_helper

#: Levi-Civita as a (3, 9) map: cross(a, b) = EPS @ vec(a b^T)
_EPS = np.zeros((3, 9))
for _i, _j, _k, _s in ((0, 1, 2, 1), (1, 2, 0, 1), (2, 0, 1, 1), (0, 2, 1, -1), (1, 0, 2, -1), (2, 1, 0, -1)):
    _EPS[_i, 3 * _j + _k] = _s


@dataclass(frozen=True)
class PointMassChain:
    """Serial revolute chain and the payload point: placements R0 (n, 3, 3), p0 (n, 3) of each
    joint in its parent's frame (m), unit axes (n, 3) in the joint frame, the point c (3,) in the
    last joint's frame (m), gravity (3,) m/s^2; ``cols`` (n,): the column of each chain joint in
    the model's joint order (x = [q, qd, qdd] in that order)."""

    R0: np.ndarray
    p0: np.ndarray
    axes: np.ndarray
    c: np.ndarray
    gravity: np.ndarray
    cols: np.ndarray

    @classmethod
    def from_robot(cls, robot: str, joint_names: Sequence[str]) -> PointMassChain:
        """The chain of ``robot``'s URDF (Pinocchio) with the payload point the simulated plant
        uses (:func:`dynlearn_ros.sim.plant.payload_model`: the end-effector link's centre of mass,
        its URDF inertial origin, :func:`dynlearn_ros.core.robots.ee_com_local`)."""
        from dynlearn_ros.core.analytic import RigidBodyModel
        from dynlearn_ros.core.robots import ee_com_local, robot_spec

        spec = robot_spec(robot)
        model = RigidBodyModel(spec.urdf_path, spec.joint_names).model
        com = ee_com_local(spec)
        frame = model.frames[model.getFrameId(spec.ee_link)]
        chain, j = [], frame.parentJoint
        while j > 0:
            chain.append(j)
            j = model.parents[j]
        chain.reverse()
        names = list(joint_names)
        if sorted(model.names[j] for j in chain) != sorted(names):
            raise ValueError(f"the chain to {spec.ee_link} ({[model.names[j] for j in chain]}) is not {names}")
        axes = []
        for j in chain:
            short = model.joints[j].shortname()
            if short in ("JointModelRX", "JointModelRY", "JointModelRZ"):
                axes.append(np.eye(3)["XYZ".index(short[-1])])
            elif short == "JointModelRevoluteUnaligned":
                axes.append(np.asarray(model.joints[j].extract().axis, dtype=float))
            else:
                raise ValueError(f"joint {model.names[j]}: {short} is not a revolute joint")
        return cls(R0=np.stack([model.jointPlacements[j].rotation for j in chain]),
                   p0=np.stack([model.jointPlacements[j].translation for j in chain]),
                   axes=np.stack(axes), c=np.asarray(frame.placement.act(com), dtype=float),
                   gravity=np.asarray(model.gravity.linear, dtype=float),
                   cols=np.array([names.index(model.names[j]) for j in chain]))


class NumpyOps:
    """The operations of :func:`point_mass_regressor` on float64 numpy arrays."""

    def const(self, a) -> np.ndarray:
        return np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a)

    add = staticmethod(np.add)
    sub = staticmethod(np.subtract)
    mul = staticmethod(np.multiply)
    matmul = staticmethod(np.matmul)
    cos = staticmethod(np.cos)
    sin = staticmethod(np.sin)

    def gather(self, a, idx, axis: int):
        return np.take(a, idx, axis=axis)

    def unsqueeze(self, a, axes: Sequence[int]):
        return np.expand_dims(a, tuple(axes))

    def transpose(self, a, perm: Sequence[int]):
        return np.transpose(a, perm)

    def reshape(self, a, shape: Sequence[int]):
        return a.reshape(shape)

    def concat(self, parts, axis: int):
        return np.concatenate(parts, axis=axis)

    def reduce_sum(self, a, axis: int):
        return a.sum(axis=axis, keepdims=True)

    def einsum(self, eq: str, *args):
        return np.einsum(eq, *args)

    def split(self, a, parts: int, axis: int, size: int = 1):
        return np.split(a, parts, axis=axis)


class OnnxOps:
    """The same operations emitted as ONNX nodes (float32; opset >= 13); names carry ``prefix``."""

    def __init__(self, prefix: str = "pm") -> None:
        self.prefix, self.nodes, self.inits, self._k = prefix, [], [], 0

    def _name(self) -> str:
        self._k += 1
        return f"{self.prefix}_{self._k}"

    def _node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self._name()
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def const(self, a) -> str:
        name = self._name()
        arr = np.asarray(a)
        self.inits.append(numpy_helper.from_array(arr.astype(np.int64 if arr.dtype.kind in "iu" else np.float32), name))
        return name

    def add(self, a, b):
        return self._node("Add", [a, b])

    def sub(self, a, b):
        return self._node("Sub", [a, b])

    def mul(self, a, b):
        return self._node("Mul", [a, b])

    def matmul(self, a, b):
        return self._node("MatMul", [a, b])

    def cos(self, a):
        return self._node("Cos", [a])

    def sin(self, a):
        return self._node("Sin", [a])

    def gather(self, a, idx, axis: int):
        return self._node("Gather", [a, self.const(np.asarray(idx, dtype=np.int64))], axis=axis)

    def unsqueeze(self, a, axes):
        return self._node("Unsqueeze", [a, self.const(np.asarray(axes, dtype=np.int64))])

    def transpose(self, a, perm):
        return self._node("Transpose", [a], perm=list(perm))

    def reshape(self, a, shape):
        return self._node("Reshape", [a, self.const(np.asarray(shape, dtype=np.int64))])

    def concat(self, parts, axis: int):
        return self._node("Concat", list(parts), axis=axis)

    def reduce_sum(self, a, axis: int):
        return self._node("ReduceSum", [a, self.const(np.array([axis], dtype=np.int64))], keepdims=1)

    def einsum(self, eq: str, *args):
        return self._node("Einsum", list(args), equation=eq)

    def split(self, a, parts: int, axis: int, size: int = 1):
        """``parts`` pieces of ``size`` along ``axis`` (the sizes as an input: opset 13 and later)."""
        outs = [self._name() for _ in range(parts)]
        self.nodes.append(helper.make_node("Split", [a, self.const(np.full(parts, size, dtype=np.int64))], outs,
                                           axis=axis))
        return outs


def point_mass_regressor(ops, chain: PointMassChain, x):
    """Y (B, n) N*m/kg in the model's joint order, from x (B, 3n) = [q, qd, qdd] (rad, rad/s,
    rad/s^2) in that order; ``ops``: :class:`NumpyOps` or :class:`OnnxOps` (then x, Y are names).

    Shapes inside: per-joint vectors stacked as homogeneous columns (B, n, 4, 1) (directions end
    in 0, points in 1, so differences of points are directions and the cross product is the 3-D
    one padded with zeros); the chain's sequential part is n - 1 products of 4x4 transforms, the
    rest is vectorized over the joints with MatMul (the controller evaluates this graph every
    tick and onnxruntime's cost here is per node, ~45 nodes for 7 joints: einsum nodes, fewer,
    measured slower). With the Jacobi identity the velocity term of joint i is

        (w_i^- x z_i) x r_i + z_i x (v_c - v_i) = w_i^- x J_i + z_i x S_i,   S_i = sum_{k>=i} J_k qd_k

    (v_c - v_i = w_i^- x r_i + S_i), so a_c = sum_i J_i qdd_i + (w_i^- x J_i + z_i x S_i) qd_i - g."""
    n = len(chain.cols)
    cols = np.asarray(chain.cols, dtype=np.int64)
    # local transforms L_i(q) = [R0_i Rot(k_i, q_i), p0_i; 0, 1] = C + sin(q) S + cos(q) Cc,
    # Rodrigues: Rot = (I + K^2) + sin(q) K - cos(q) K^2
    C, S, Cc = np.zeros((n, 4, 4)), np.zeros((n, 4, 4)), np.zeros((n, 4, 4))
    for i in range(n):
        k = np.asarray(chain.axes[i], dtype=float)
        K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        C[i, :3, :3] = chain.R0[i] @ (np.eye(3) + K @ K)
        C[i, :3, 3] = chain.p0[i]
        C[i, 3, 3] = 1.0
        S[i, :3, :3] = chain.R0[i] @ K
        Cc[i, :3, :3] = -chain.R0[i] @ K @ K
    # G (16, 4): vec(skew(a)) = G a for a homogeneous direction a
    G = np.zeros((4, 4, 4))
    for i, j, k, sgn in ((0, 1, 2, -1), (0, 2, 1, 1), (1, 0, 2, 1), (1, 2, 0, -1), (2, 0, 1, -1), (2, 1, 0, 1)):
        G[i, j, k] = sgn        # skew(a)[i, j] = sgn a_k
    G = G.reshape(16, 4)
    idx = np.concatenate([cols, n + cols, 2 * n + cols])
    q, qd, qdd = ops.split(ops.reshape(ops.gather(x, idx, 1), [-1, 3 * n, 1, 1]), 3, 1, n)   # (B, n, 1, 1)
    L = ops.add(ops.add(ops.const(C), ops.mul(ops.sin(q), ops.const(S))), ops.mul(ops.cos(q), ops.const(Cc)))
    T, Ts = None, []
    for Li in ops.split(L, n, 1):                                            # (B, 1, 4, 4) each
        T = Li if T is None else ops.matmul(T, Li)
        Ts.append(T)
    T_all = ops.concat(Ts, 1)                                                 # (B, n, 4, 4)
    E = np.zeros((n, 4, 2))
    E[:, :3, 0] = chain.axes
    E[:, 3, 1] = 1.0
    Z, P = ops.split(ops.matmul(T_all, ops.const(E)), 2, 3)                  # (B, n, 4, 1) each
    pc = ops.matmul(Ts[-1], ops.const(np.append(chain.c, 1.0)[:, None]))      # (B, 1, 4, 1)
    Gc = ops.const(G)

    def skew(a):            # (B, n, 4, 1) -> (B, n, 4, 4)
        return ops.reshape(ops.matmul(Gc, a), [-1, n, 4, 4])

    def along_joints(M, v):  # sum_k M_ik v_k: (n, n) x (B, n, 4, 1) -> (B, n, 4, 1)
        return ops.reshape(ops.matmul(ops.const(M), ops.reshape(v, [-1, n, 4])), [-1, n, 4, 1])

    r = ops.sub(pc, P)
    Zx = skew(Z)
    J = ops.matmul(Zx, r)
    w = along_joints(np.tril(np.ones((n, n)), -1), ops.mul(Z, qd))          # w_i^-
    suffix = along_joints(np.triu(np.ones((n, n))), ops.mul(J, qd))         # S_i
    vel = ops.add(ops.matmul(skew(w), J), ops.matmul(Zx, suffix))
    terms = ops.add(ops.mul(J, qdd), ops.mul(vel, qd))
    a_c = ops.sub(ops.reduce_sum(terms, 1), ops.const(np.append(chain.gravity, 0.0)[:, None]))   # (B, 1, 4, 1)
    Y = ops.reshape(ops.matmul(ops.transpose(J, [0, 1, 3, 2]), a_c), [-1, n])       # chain order
    return ops.gather(Y, np.argsort(cols), 1)                                         # model order
