"""Kinematic chains and their pose chain, computed with Pinocchio (the ground truth).

A chain has ``n`` revolute degrees of freedom in order; the *pose chain* has one element per
DoF: element ``k`` is the frame of the link moved by DoF ``k`` (Pinocchio's joint frame
``oMi``), except that the last element is the end-effector frame. Each element is 9 numbers:

    [p (3, m) | x axis of the frame (3) | z axis of the frame (3)]   in the base frame.

Orientation as two columns of the rotation matrix (the "6D" representation): continuous on
SO(3) with no wrap-around (Euler angles jump by 2 pi, a quaternion q and -q are the same
rotation), bounded, and the third axis is their cross product, so nothing is lost.

Robots: ``iiwa`` and ``panda`` from :func:`dynlearn_ros.core.robots.robot_spec`; ``arm40``, a
generated 40-joint arm, each joint a revolute DoF about x then one about y (+-45 deg, 80 DoF,
links of 2.5 cm along z: 1 m reach); ``planarN`` (N = 2..9), N revolute joints about z with
links of 1/N m along x, whose forward kinematics has a closed form (tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pinocchio as pin

POSE_DIM = 9
COMPONENTS = ("px", "py", "pz", "xx", "xy", "xz", "zx", "zy", "zz")
ARM40_JOINTS, ARM40_LINK_M, ARM40_LIMIT = 40, 0.025, math.radians(45.0)
CHAINS = ("iiwa", "panda", "arm40")


@dataclass
class Chain:
    """A serial chain: Pinocchio model (movable DoF only), one pose-chain element per DoF.

    ``lower``/``upper``: (n,) rad; ``geometry``: (n, 6) per DoF [joint axis in its parent
    frame (3) | joint placement translation in its parent frame (3, m)], a constant per-step
    input for the network; ``scale``: m, the reach, used to normalize positions."""

    name: str
    model: pin.Model
    joint_names: tuple[str, ...]
    ee_frame: int
    lower: np.ndarray
    upper: np.ndarray
    home: np.ndarray
    base_frame: str = "world"
    data: pin.Data = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.data = self.model.createData()
        self.n = self.model.nq
        geo = np.zeros((self.n, 6))
        for k in range(self.n):
            jm = self.model.joints[k + 1]
            axis = _joint_axis(jm)
            geo[k, :3] = axis
            geo[k, 3:] = self.model.jointPlacements[k + 1].translation
        self.geometry = geo
        # reach: distance from the first joint along the chain's placements, plus the EE offset
        ee_off = np.linalg.norm(self.model.frames[self.ee_frame].placement.translation)
        self.scale = float(np.sum(np.linalg.norm(geo[1:, 3:], axis=1)) + ee_off) or 1.0
        self.shoulder = self.model.jointPlacements[1].translation.copy()
        # the end-effector frame in the last DoF's joint frame, as a pose-chain element (9,)
        tip = self.model.frames[self.ee_frame].placement
        self.tip = np.concatenate([tip.translation, tip.rotation[:, 0], tip.rotation[:, 2]])

    def fk(self, q: np.ndarray, out: np.ndarray | None = None, elements=None) -> np.ndarray:
        """Pose chain of one configuration: q (n,) rad -> (n, 9) [p m | x axis | z axis].

        ``elements`` (indices, optional): fill only these rows (a solver needs only the
        constrained ones; copying all n frames out of Pinocchio is a Python loop over n); the
        other rows of a new ``out`` are 0."""
        if out is None:
            out = np.empty((self.n, POSE_DIM)) if elements is None else np.zeros((self.n, POSE_DIM))
        pin.forwardKinematics(self.model, self.data, np.asarray(q, dtype=np.float64))
        for k in range(self.n) if elements is None else elements:
            if k == self.n - 1:
                _pack(pin.updateFramePlacement(self.model, self.data, self.ee_frame), out[k])
            else:
                _pack(self.data.oMi[k + 1], out[k])
        return out

    def fk_batch(self, q: np.ndarray, elements=None) -> np.ndarray:
        """q (B, n) rad -> pose chains (B, n, 9) (``elements``: only these rows, as :meth:`fk`)."""
        q = np.asarray(q, dtype=np.float64)
        out = np.empty((q.shape[0], self.n, POSE_DIM)) if elements is None else np.zeros((q.shape[0], self.n, POSE_DIM))
        for b in range(q.shape[0]):
            self.fk(q[b], out[b], elements)
        return out

    def jacobian(self, q: np.ndarray, k: int) -> np.ndarray:
        """(6, n) Jacobian of element k (linear rows 0-2, angular rows 3-5, world-aligned axes at
        the element's origin) at q; call after :meth:`fk` at the same q is not required."""
        return self.jacobians(q, (k,))[0]

    def jacobians(self, q: np.ndarray, elements) -> np.ndarray:
        """(len(elements), 6, n) Jacobians of the given elements at q, as :meth:`jacobian` gives
        each, from one O(n) pass (``computeJointJacobians`` once, then a copy per element): the
        stacked multi-frame Jacobian a damped-least-squares step needs for k constrained frames."""
        pin.computeJointJacobians(self.model, self.data, np.asarray(q, dtype=np.float64))
        out = np.empty((len(elements), 6, self.n))
        for i, k in enumerate(elements):
            if k == self.n - 1:
                pin.updateFramePlacement(self.model, self.data, self.ee_frame)
                out[i] = pin.getFrameJacobian(self.model, self.data, self.ee_frame, pin.LOCAL_WORLD_ALIGNED)
            else:
                out[i] = pin.getJointJacobian(self.model, self.data, int(k) + 1, pin.LOCAL_WORLD_ALIGNED)
        return out

    def sample(self, rng: np.random.Generator, count: int, frac: float = 1.0) -> np.ndarray:
        """``count`` configurations (count, n) uniform in the middle ``frac`` of each joint's range."""
        mid, half = 0.5 * (self.lower + self.upper), 0.5 * (self.upper - self.lower)
        return mid + frac * half * rng.uniform(-1.0, 1.0, size=(count, self.n))

    def sample_near_limits(self, rng: np.random.Generator, ks: np.ndarray, edge: float = 0.05) -> np.ndarray:
        """(len(ks), n) configurations (rad): row r has exactly ``ks[r]`` joints (a random subset)
        in the outer ``edge`` of their ranges, each at a random side, and the others uniform in
        the inner 1 - 2 ``edge``."""
        ks = np.asarray(ks, dtype=int)
        mid, half = 0.5 * (self.lower + self.upper), 0.5 * (self.upper - self.lower)
        u = rng.uniform(-(1 - 2 * edge), 1 - 2 * edge, size=(len(ks), self.n))
        for row, k in enumerate(ks):
            idx = rng.choice(self.n, size=k, replace=False)
            u[row, idx] = rng.choice([-1.0, 1.0], size=k) * rng.uniform(1 - edge, 0.999, size=k)
        return mid + half * u


def _pack(m: pin.SE3, out: np.ndarray) -> None:
    out[:3] = m.translation
    out[3:6] = m.rotation[:, 0]
    out[6:9] = m.rotation[:, 2]


def _joint_axis(jm) -> np.ndarray:
    short = jm.shortname()
    for letter, axis in (("X", (1.0, 0, 0)), ("Y", (0, 1.0, 0)), ("Z", (0, 0, 1.0))):
        if short.endswith("R" + letter) or short == "JointModelR" + letter:
            return np.array(axis)
    if "Unaligned" in short:
        return np.asarray(jm.axis, dtype=np.float64).copy()
    raise ValueError(f"unsupported joint type {short}: only revolute joints")


def _from_urdf(name: str) -> Chain:
    from dynlearn_ros.core.robots import robot_spec

    spec = robot_spec(name)
    full = pin.buildModelFromUrdf(str(spec.urdf_path))
    keep = set(spec.joint_names)
    lock = [i for i in range(1, full.njoints) if full.names[i] not in keep]
    model = pin.buildReducedModel(full, lock, pin.neutral(full)) if lock else full
    names = tuple(model.names[i] for i in range(1, model.njoints))
    if names != spec.joint_names:
        raise ValueError(f"{name}: Pinocchio joint order {names} differs from {spec.joint_names}")
    ee = model.getFrameId(spec.ee_link)
    return Chain(name, model, names, ee, spec.lower.copy(), spec.upper.copy(), spec.home.copy(),
                 base_frame=model.frames[1].name if model.nframes > 1 else "world")


def _generated(name: str, axes: list[str], placements: list[np.ndarray], tip: np.ndarray,
               limit: float) -> Chain:
    model = pin.Model()
    parent = 0
    names = []
    for k, (axis, t) in enumerate(zip(axes, placements, strict=True)):
        jm = {"x": pin.JointModelRX(), "y": pin.JointModelRY(), "z": pin.JointModelRZ()}[axis]
        jname = f"j{k // 2}_{axis}" if name == "arm40" else f"joint{k + 1}"
        parent = model.addJoint(parent, jm, pin.SE3(np.eye(3), np.asarray(t, float)), jname)
        # a small body keeps the model valid for dynamics algorithms too (not used by IK)
        model.appendBodyToJoint(parent, pin.Inertia.FromSphere(0.1, 0.01), pin.SE3.Identity())
        names.append(jname)
    model.lowerPositionLimit[:] = -limit
    model.upperPositionLimit[:] = limit
    frame = pin.Frame("tip", parent, 0, pin.SE3(np.eye(3), np.asarray(tip, float)), pin.FrameType.OP_FRAME)
    ee = model.addFrame(frame)
    n = len(axes)
    return Chain(name, model, tuple(names), ee, np.full(n, -limit), np.full(n, limit), np.zeros(n))


def arm40(joints: int = ARM40_JOINTS, link_m: float = ARM40_LINK_M) -> Chain:
    """The generated arm: ``joints`` joints of two DoF (about x, then y), links of ``link_m``
    along z between joints and to the tip; +-45 deg everywhere; 2*joints DoF."""
    axes, placements = [], []
    for j in range(joints):
        axes += ["x", "y"]
        placements += [np.array([0.0, 0.0, link_m if j else 0.0]), np.zeros(3)]
    c = _generated("arm40" if joints == ARM40_JOINTS else f"arm{joints}", axes, placements,
                   np.array([0.0, 0.0, link_m]), ARM40_LIMIT)
    return c


def planar(n: int) -> Chain:
    """n revolute joints about z, links of 1/n m along x (tip included): planar in x-y."""
    link = 1.0 / n
    placements = [np.zeros(3)] + [np.array([link, 0.0, 0.0])] * (n - 1)
    return _generated(f"planar{n}", ["z"] * n, placements, np.array([link, 0.0, 0.0]), math.radians(170.0))


def planar_fk(q: np.ndarray) -> np.ndarray:
    """Closed-form pose chain of :func:`planar` (independent of Pinocchio): q (n,) -> (n, 9).

    Element k (joint frame k) sits at sum_{i<k} l (cos phi_i, sin phi_i) with phi_i = q_0+...+q_i;
    its x axis is (cos phi_k, sin phi_k, 0), its z axis (0, 0, 1); the last element is the tip,
    one more link along the last x axis."""
    q = np.asarray(q, dtype=np.float64)
    n = q.size
    link = 1.0 / n
    phi = np.cumsum(q)
    out = np.zeros((n, POSE_DIM))
    pos = np.zeros(2)
    for k in range(n):
        out[k, :2] = pos
        pos = pos + link * np.array([math.cos(phi[k]), math.sin(phi[k])])
        out[k, 3:5] = (math.cos(phi[k]), math.sin(phi[k]))
        out[k, 8] = 1.0
    out[n - 1, :2] = pos
    return out


@cache
def _cached(name: str) -> Chain:
    if name in ("iiwa", "panda"):
        return _from_urdf(name)
    if name == "arm40":
        return arm40()
    if name.startswith("arm") and name[3:].isdigit():
        return arm40(int(name[3:]))
    if name.startswith("planar") and name[6:].isdigit() and 2 <= int(name[6:]) <= 9:
        return planar(int(name[6:]))
    raise ValueError(f"unknown chain '{name}'; choose from {CHAINS}, armN or planarN (N = 2..9)")


def chain(name: str) -> Chain:
    """The chain called ``name`` (iiwa, panda, arm40, armN, planarN); built once per process.

    The returned object owns one Pinocchio data: not for concurrent use from threads."""
    return _cached(name)
