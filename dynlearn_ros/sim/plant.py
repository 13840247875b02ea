"""A torque-controlled PyBullet arm that matches its URDF's rigid-body model, plus what it does not know.

The plant is the URDF of :func:`dynlearn_ros.core.robots.robot_spec` loaded so that PyBullet's
forward dynamics agree with Pinocchio's RNEA of the same file, and then made different from it
in two controlled ways the learned models must discover:

* **joint friction** (per joint, N*m): ``tau_f = -b * qd - f_c * tanh(qd / eps)``, added to the
  commanded torque before the step;
* **payload** (kg): a point mass at the centre of mass of the end-effector link
  (``RobotSpec.ee_link``). The link's mass becomes ``m_link + payload``; its centre of mass
  does not move and its rotational inertia about that centre is unchanged (a point mass at the
  centre adds none), so the change is exact and representable in any rigid-body model
  (Pinocchio: add ``Inertia(payload, c_link, 0)`` in the link frame).

PyBullet defaults that would silently break the match with the URDF model, all handled here:
gravity is 0 by default (set to -9.81 m/s^2 on z, Pinocchio's value), the step is 1/240 s (set to
``dt``), inertias are recomputed from collision shapes unless ``URDF_USE_INERTIA_FROM_FILE``,
velocity motors hold every joint (switched off: VELOCITY_CONTROL with force 0), link linear and
angular damping and the URDF's joint damping are applied (all set to 0), ``changeDynamics(mass=)``
recomputes the inertia unless ``localInertiaDiagonal`` is given (always given), and PyBullet's
joint indices differ from the URDF's movable-joint order (joints are mapped by name).

Joint limits stay as PyBullet enforces them (hard constraints, like a real arm's end stops);
there is no ground plane and no self-collision, so nothing else touches the arm.

Each instance owns its own DIRECT physics client: several plants in one process do not
interact, and the same inputs give bitwise the same trajectory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dynlearn_ros.core.robots import ee_com_local, robot_names, robot_spec

#: gravity along -z (m/s^2); Pinocchio's default model.gravity
GRAVITY = 9.81


def per_joint(value: float | Sequence[float] | np.ndarray | None, n: int, name: str) -> np.ndarray:
    """Broadcast ``None`` (zeros), a scalar or a length-1 / length-n sequence to an (n,) array.

    Raises ValueError naming ``name`` for another length, a non-finite or a negative value."""
    if value is None:
        return np.zeros(n)
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64)).reshape(-1)
    if arr.size == 1:
        arr = np.full(n, arr[0])
    if arr.size != n:
        raise ValueError(f"{name}: expected one value or {n} (one per joint), got {arr.size}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name}: values must be finite and >= 0, got {arr.tolist()}")
    return arr


def payload_model(robot: str, payload_kg: float, joint_names: Sequence[str] | None = None):
    """The URDF's :class:`~dynlearn_ros.core.analytic.RigidBodyModel` plus the plant's payload.

    Adds a point mass ``payload_kg`` at the end-effector link's centre of mass, exactly the change
    :meth:`SimPlant.set_payload` makes: the ground truth of the sim plant without friction (an
    "oracle" for tests and baselines). ``joint_names`` default: the robot's URDF order."""
    import pinocchio as pin

    from dynlearn_ros.core.analytic import RigidBodyModel

    spec = robot_spec(robot)
    rbd = RigidBodyModel(spec.urdf_path, spec.joint_names if joint_names is None else joint_names)
    if payload_kg:
        model = rbd.model
        frame = model.frames[model.getFrameId(spec.ee_link)]
        com_in_joint = frame.placement.act(ee_com_local(spec))
        model.inertias[frame.parentJoint] = model.inertias[frame.parentJoint] + pin.Inertia(
            float(payload_kg), com_in_joint, np.zeros((3, 3)))
        rbd.data = model.createData()
    return rbd


class SimPlant:
    """One torque-controlled arm in its own PyBullet DIRECT client.

    Args:
        robot: a robot table entry with ``simulate: true`` (:data:`dynlearn_ros.core.robots.ROBOTS`).
        dt: physics step (s); every :meth:`step` advances exactly one step.
        friction_viscous: b, N*m*s/rad; scalar or (n,); None = 0.
        friction_coulomb: f_c, N*m; scalar or (n,); None = 0.
        coulomb_velocity_eps: eps of the tanh smoothing of the Coulomb term (rad/s).
        payload_kg: initial payload at the end-effector link's centre of mass (kg).
        initial_q: start position (n,) rad; None = ``robot_spec(robot).home``. Starts at rest.

    The friction torque is evaluated at the velocity before the step (explicit). For it to
    never reverse a joint's velocity on its own, its slope k_j = b_j + f_c,j / eps must satisfy
    k_j * dt <= m_eff,j, where m_eff,j = 1 / (M^-1)_jj is the joint's effective inertia with all
    other joints free (its minimum over a seeded sample of configurations, payload 0, is used).
    Construction fails with a precise message otherwise (raise eps or lower the friction).
    """

    def __init__(
        self,
        robot: str = "iiwa",
        dt: float = 1e-3,
        friction_viscous: float | Sequence[float] | np.ndarray | None = None,
        friction_coulomb: float | Sequence[float] | np.ndarray | None = None,
        coulomb_velocity_eps: float = 0.1,
        payload_kg: float = 0.0,
        initial_q: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        simulated = robot_names(simulated_only=True)
        if robot not in simulated:
            raise ValueError(f"unknown robot '{robot}' for the simulator; choose from {simulated}")
        if not (np.isfinite(dt) and 1e-5 <= dt <= 0.1):
            raise ValueError(f"dt must be in [1e-5, 0.1] s, got {dt}")
        if not (np.isfinite(coulomb_velocity_eps) and coulomb_velocity_eps > 0):
            raise ValueError(f"coulomb_velocity_eps must be > 0 rad/s, got {coulomb_velocity_eps}")
        import pybullet as pb

        self._pb = pb
        self.spec = robot_spec(robot)
        self.robot = robot
        self.dt = float(dt)
        self.joint_names: tuple[str, ...] = self.spec.joint_names
        n = self.n = len(self.joint_names)
        # the plant's motors saturate at the URDF's effort limits (pybullet_data's iiwa: 300 N*m);
        # the controller's default clamp is the manufacturer's (spec.effort_limits), lower or equal
        self.effort_limits = self.spec.urdf_effort_limits.astype(np.float64).copy()
        self.friction_viscous = per_joint(friction_viscous, n, "friction_viscous")
        self.friction_coulomb = per_joint(friction_coulomb, n, "friction_coulomb")
        self.coulomb_velocity_eps = float(coulomb_velocity_eps)
        self._has_friction = bool(np.any(self.friction_viscous > 0) or np.any(self.friction_coulomb > 0))
        q0 = self.spec.home if initial_q is None else np.asarray(initial_q, dtype=np.float64)
        if q0.shape != (n,) or not np.all(np.isfinite(q0)):
            raise ValueError(f"initial_q: expected {n} finite values (rad), got {np.shape(q0)}")
        self._check_friction_stiffness()

        self._cid = pb.connect(pb.DIRECT)
        if self._cid < 0:
            raise RuntimeError("pybullet.connect(DIRECT) failed")
        cid = self._cid
        pb.setGravity(0.0, 0.0, -GRAVITY, physicsClientId=cid)
        pb.setTimeStep(self.dt, physicsClientId=cid)
        self._body = pb.loadURDF(
            str(self.spec.urdf_path), useFixedBase=True,
            flags=pb.URDF_USE_INERTIA_FROM_FILE | pb.URDF_IGNORE_VISUAL_SHAPES, physicsClientId=cid,
        )
        by_name: dict[str, int] = {}
        link_index: dict[str, int] = {}
        movable: list[str] = []
        for j in range(pb.getNumJoints(self._body, physicsClientId=cid)):
            info = pb.getJointInfo(self._body, j, physicsClientId=cid)
            name, jtype, child = info[1].decode(), info[2], info[12].decode()
            by_name[name] = j
            link_index[child] = j
            if jtype != pb.JOINT_FIXED:
                movable.append(name)
        extra = sorted(set(movable) - set(self.joint_names))
        missing = [j for j in self.joint_names if j not in by_name]
        if missing or extra:
            raise RuntimeError(f"PyBullet model of {robot}: missing joints {missing}, unexpected movable {extra}")
        self._idx = [by_name[j] for j in self.joint_names]
        if self.spec.ee_link not in link_index:
            raise RuntimeError(f"end-effector link {self.spec.ee_link} not in the PyBullet model")
        self._ee = link_index[self.spec.ee_link]
        # No damping anywhere: the URDF model has none.
        for link in range(-1, pb.getNumJoints(self._body, physicsClientId=cid)):
            pb.changeDynamics(self._body, link, linearDamping=0.0, angularDamping=0.0, jointDamping=0.0,
                              physicsClientId=cid)
        # Velocity motors off (they would hold every joint with a default force).
        pb.setJointMotorControlArray(self._body, self._idx, pb.VELOCITY_CONTROL, forces=[0.0] * n,
                                     physicsClientId=cid)
        info = pb.getDynamicsInfo(self._body, self._ee, physicsClientId=cid)
        self._ee_mass0 = float(info[0])
        self._ee_inertia0 = tuple(float(v) for v in info[2])
        self.ee_com_local = np.array(info[3], dtype=np.float64)  # link frame, m (URDF inertial origin)
        if not np.allclose(self.ee_com_local, ee_com_local(self.spec), atol=1e-12):
            raise RuntimeError(f"PyBullet's centre of mass of {self.spec.ee_link} differs from the URDF's")

        self.payload_kg = 0.0
        self.set_payload(payload_kg)
        # preallocated work arrays
        self._tau_cmd = np.zeros(n)
        self.applied_torque = np.zeros(n)  # clamped command applied during the last step (N*m)
        self.friction_torque = np.zeros(n)  # friction added during the last step (N*m)
        self._q = np.zeros(n)
        self._qd = np.zeros(n)
        self.clamp_counts = np.zeros(n, dtype=np.int64)  # per joint: steps its command was clamped
        self.clamped_steps = 0  # steps with at least one joint clamped
        self.steps = 0
        self.braking = False  # the brake holds the joints (see brake_step)
        self.brake_steps = 0
        self.t = 0.0
        self.reset(q0)

    # ------------------------------------------------------------------ set-up helpers
    def _check_friction_stiffness(self) -> None:
        k = self.friction_viscous + self.friction_coulomb / self.coulomb_velocity_eps
        if not np.any(k > 0):
            self.min_effective_inertia = None
            return
        from dynlearn_ros.core.analytic import RigidBodyModel

        rbd = RigidBodyModel(self.spec.urdf_path, self.joint_names)
        rng = np.random.default_rng(0)
        qs = [self.spec.home] + [rng.uniform(self.spec.lower, self.spec.upper) for _ in range(64)]
        m_eff = np.min([1.0 / np.diag(np.linalg.inv(rbd.mass_matrix(q))) for q in qs], axis=0)
        self.min_effective_inertia = m_eff
        bad = np.nonzero(k * self.dt > m_eff)[0]
        if bad.size:
            j = int(bad[0])
            raise ValueError(
                f"friction on joint {self.joint_names[j]} too stiff for dt={self.dt} s: slope "
                f"b + f_c/eps = {k[j]:.4g} N*m*s/rad but at most m_eff/dt = {m_eff[j] / self.dt:.4g} "
                f"(m_eff = {m_eff[j]:.3g} kg*m^2) keeps the explicit friction stable; raise "
                f"coulomb_velocity_eps or lower the friction of that joint"
            )

    # ------------------------------------------------------------------ public API
    @property
    def client_id(self) -> int:
        return self._cid

    def set_payload(self, kg: float) -> None:
        """Attach ``kg`` (>= 0) at the end-effector link's centre of mass (0 detaches).

        Sets the link mass to m_link + kg with ``localInertiaDiagonal`` passed unchanged, so
        PyBullet does not recompute the rotational inertia (a point mass at the centre of mass
        adds none). Takes effect from the next :meth:`step`."""
        kg = float(kg)
        if not (np.isfinite(kg) and 0.0 <= kg <= 1000.0):
            raise ValueError(f"payload must be in [0, 1000] kg, got {kg}")
        self._pb.changeDynamics(
            self._body, self._ee, mass=self._ee_mass0 + kg, localInertiaDiagonal=self._ee_inertia0,
            physicsClientId=self._cid,
        )
        self.payload_kg = kg

    def reset(self, q: Sequence[float] | np.ndarray | None = None, qd: Sequence[float] | np.ndarray | None = None,
              t: float = 0.0) -> None:
        """Place the arm at q (n,) rad with velocity qd (n,) rad/s (None: home / rest); time = t (s).

        Counters (steps, clamps) are kept; call :meth:`reset_counters` to clear them."""
        q = self.spec.home if q is None else np.asarray(q, dtype=np.float64)
        qd = np.zeros(self.n) if qd is None else np.asarray(qd, dtype=np.float64)
        if q.shape != (self.n,) or qd.shape != (self.n,):
            raise ValueError(f"reset: q and qd must be ({self.n},), got {q.shape}, {qd.shape}")
        for j, idx in enumerate(self._idx):
            self._pb.resetJointState(self._body, idx, float(q[j]), float(qd[j]), physicsClientId=self._cid)
        self.applied_torque[:] = 0.0
        self.friction_torque[:] = 0.0
        self._t0 = float(t)
        self._k = 0
        self.t = self._t0
        self._read()

    def reset_counters(self) -> None:
        self.clamp_counts[:] = 0
        self.clamped_steps = 0
        self.steps = 0

    def _read(self) -> None:
        states = self._pb.getJointStates(self._body, self._idx, physicsClientId=self._cid)
        for j, s in enumerate(states):
            self._q[j] = s[0]
            self._qd[j] = s[1]

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """(q, qd): copies, (n,) rad and rad/s, at time :attr:`t`."""
        return self._q.copy(), self._qd.copy()

    def state_into(self, q_out: np.ndarray, qd_out: np.ndarray) -> None:
        """Copy q (rad) and qd (rad/s) into preallocated (n,) arrays (no allocation)."""
        q_out[:] = self._q
        qd_out[:] = self._qd

    def step(self, tau_cmd: np.ndarray | Sequence[float]) -> None:
        """Apply the motor torque ``tau_cmd`` (n,) N*m for one step of ``dt``.

        tau_applied = clip(tau_cmd, -limit, limit)   (stored in :attr:`applied_torque`)
        PyBullet gets tau_applied - b*qd - f_c*tanh(qd/eps), qd taken before the step.
        A non-finite command raises ValueError (callers filter commands before)."""
        np.copyto(self._tau_cmd, tau_cmd)
        if not np.all(np.isfinite(self._tau_cmd)):
            raise ValueError(f"non-finite torque command {self._tau_cmd.tolist()}")
        if self.braking:
            self.release_brake()
        lim = self.effort_limits
        np.clip(self._tau_cmd, -lim, lim, out=self.applied_torque)
        clamped = self.applied_torque != self._tau_cmd
        if clamped.any():
            self.clamp_counts += clamped
            self.clamped_steps += 1
        if self._has_friction:
            qd = self._qd
            f = self.friction_torque
            np.multiply(self.friction_viscous, qd, out=f)
            f += self.friction_coulomb * np.tanh(qd / self.coulomb_velocity_eps)
            np.negative(f, out=f)
            forces = (self.applied_torque + f).tolist()
        else:
            forces = self.applied_torque.tolist()
        self._pb.setJointMotorControlArray(
            self._body, self._idx, self._pb.TORQUE_CONTROL, forces=forces, physicsClientId=self._cid,
        )
        self._pb.stepSimulation(physicsClientId=self._cid)
        self.steps += 1
        self._k += 1
        self.t = self._t0 + self._k * self.dt
        self._read()

    def brake_step(self) -> None:
        """One step of ``dt`` with the brakes on instead of a torque command: every joint's motor
        drives its velocity to 0 with at most its effort limit (PyBullet's velocity motor, solved
        implicitly: stable at any stiffness), like a drive's brake or a controlled stop. Gravity
        is held where it can be; the arm does not spring back to an earlier pose.
        :attr:`applied_torque` is the motor torque PyBullet applied. The next :meth:`step`
        releases the brakes."""
        pb = self._pb
        if not self.braking:
            self.braking = True
        pb.setJointMotorControlArray(self._body, self._idx, pb.VELOCITY_CONTROL, targetVelocities=[0.0] * self.n,
                                     forces=self.effort_limits.tolist(), physicsClientId=self._cid)
        pb.stepSimulation(physicsClientId=self._cid)
        self.steps += 1
        self.brake_steps += 1
        self._k += 1
        self.t = self._t0 + self._k * self.dt
        states = pb.getJointStates(self._body, self._idx, physicsClientId=self._cid)
        for j, st in enumerate(states):
            self._q[j] = st[0]
            self._qd[j] = st[1]
            self.applied_torque[j] = st[3]

    def release_brake(self) -> None:
        """Velocity motors off again (force 0): torque control resumes."""
        self._pb.setJointMotorControlArray(self._body, self._idx, self._pb.VELOCITY_CONTROL,
                                           forces=[0.0] * self.n, physicsClientId=self._cid)
        self.braking = False

    def close(self) -> None:
        """Disconnect the physics client (idempotent)."""
        if getattr(self, "_cid", -1) >= 0:
            try:
                self._pb.disconnect(physicsClientId=self._cid)
            except Exception:  # already disconnected (interpreter shutdown)
                pass
            self._cid = -1

    def __enter__(self) -> SimPlant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
