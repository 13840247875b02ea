"""computed_torque_managed: the computed_torque controller as a lifecycle (managed) node.

The same node code as :mod:`dynlearn_ros.nodes.computed_torque` (this class only adds the
transitions; parameters, topics, QoS, the control law and its safety modes are that node's):

* ``unconfigured`` (at start): parameters not yet read; no topics.
* ``configure``: declares and validates the parameters, builds the analytic model, loads and
  checks the learned model (a model that fails leaves the analytic one with K_max, as in the
  plain node), creates publishers, subscriptions and timers. A bad parameter fails the
  transition with the reason logged (back to ``unconfigured``; fix it and configure again).
* ``inactive`` after configure: joint states are ignored and nothing is commanded.
* ``activate``: the controller starts: at the next joint state it hands over as the plain node
  does (hold at the measured position, ramp into the reference: WAITING until a state arrives).
  Activating again after a deactivation restarts the built-in reference from the measured
  position.
* ``deactivate``: holds. The reference becomes a hold at the last measured position and the
  controller keeps commanding it (feedback and feed-forward as before: a torque-controlled arm
  left without commands would fall or trip its driver). A latched following-error fault stays
  latched. Status and diagnostics say ``inactive (holding)``.
* ``cleanup``: destroys the topics and timers and the controller (parameters keep their values
  for the next configure); ``shutdown``: the same, from any state.

Lifecycle services as in every managed node: ``~/change_state``, ``~/get_state`` ... (``ros2
lifecycle set /computed_torque configure``). The executable exits 0 after SIGINT / SIGTERM
(summary written if it was configured), as the plain node.
"""

from __future__ import annotations

if __name__ == "__main__":  # a signal during the imports below must end the process cleanly too
    from dynlearn_ros.nodes.runner import catch_signals_early

    catch_signals_early()

from typing import Any  # noqa: E402

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn  # noqa: E402

from dynlearn_ros.core.assembly import builtin_reference  # noqa: E402
from dynlearn_ros.core.config import ConfigError  # noqa: E402
from dynlearn_ros.core.trajectories import HoldReference  # noqa: E402
from dynlearn_ros.nodes.computed_torque import SLOT_JOIN_S, ComputedTorqueNode  # noqa: E402
from dynlearn_ros.nodes.runner import run_node  # noqa: E402
from dynlearn_ros.runtime.registry import ModelLoadError  # noqa: E402

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class ManagedComputedTorqueNode(ComputedTorqueNode, LifecycleNode):
    """ComputedTorqueNode's configuration and I/O built by the lifecycle transitions."""

    def __init__(self) -> None:
        LifecycleNode.__init__(self, "computed_torque")   # not ComputedTorqueNode's: configure does that
        self.fq_name = self.get_fully_qualified_name()
        self.ticking = False
        self.configured = False
        self.state_note = " (unconfigured)"
        self._param_callbacks: list = []
        self._io: tuple[list, list, list] = ([], [], [])

    # parameters survive cleanup -> configure: a second declaration returns the current value
    def declare_parameter(self, name: str, value: Any = None, descriptor=None, ignore_override: bool = False):
        if self.has_parameter(name):
            return self.get_parameter(name)
        return super().declare_parameter(name, value, descriptor, ignore_override)

    def add_on_set_parameters_callback(self, callback) -> None:
        tracked = getattr(self, "_param_callbacks", None)   # None: rclpy's own, during __init__
        if tracked is not None:
            tracked.append(callback)
        super().add_on_set_parameters_callback(callback)

    # -- transitions --------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        before = (set(self.publishers), set(self.subscriptions), set(self.timers))
        try:
            self._configure()
            self._build_io()
        except (ConfigError, ValueError, FileNotFoundError, ModelLoadError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self._io = ([p for p in self.publishers if p not in before[0]],
                        [s for s in self.subscriptions if s not in before[1]],
                        [t for t in self.timers if t not in before[2]])
            self._teardown()
            return FAILURE
        self._io = ([p for p in self.publishers if p not in before[0]],
                    [s for s in self.subscriptions if s not in before[1]],
                    [t for t in self.timers if t not in before[2]])
        self.configured = True
        self.state_note = " (inactive: nothing commanded until activate)"
        self.get_logger().info("configured: inactive, joint states ignored until activate")
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        ctl = self.ctl
        if ctl.started and not ctl.faulted:   # after a deactivation: the reference again, from here
            ctl.set_reference(builtin_reference(self.config, ctl.q_last.copy()))
        self.ticking = True
        self.state_note = ""
        self.get_logger().info("activated: commanding" + (" (handing over at the first joint state)"
                                                          if not ctl.started else ""))
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        ctl = self.ctl
        if ctl.started and not ctl.faulted:
            ctl.set_reference(HoldReference(ctl.q_last.copy()))   # hold where the arm is now
        self.state_note = " (inactive: holding)" if ctl.started else " (inactive: nothing commanded)"
        if not ctl.started:
            self.ticking = False
        self.get_logger().info("deactivated: " + ("holding at the measured position "
                                                  f"{[round(v, 4) for v in ctl.q_last.tolist()]}"
                                                  if ctl.started else "nothing commanded"))
        return SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.write_summary()   # this configuration's run (a later one overwrites it)
        self._teardown()
        self.get_logger().info("cleaned up: unconfigured")
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.configured:
            self.write_summary()
            self._teardown()
        return SUCCESS

    def _teardown(self) -> None:
        """Undo configure: topics, timers, the parameter callback, the model slot."""
        self.ticking = False
        pubs, subs, timers = self._io
        watchdog = getattr(self, "watchdog", None)   # recreated when stale_timeout_ms changes
        if watchdog is not None and watchdog not in timers:
            timers = [*timers, watchdog]
        for t in timers:
            t.cancel()
            self.destroy_timer(t)
        for s in subs:
            self.destroy_subscription(s)
        for p in pubs:
            self.destroy_publisher(p)
        self._io = ([], [], [])
        for cb in self._param_callbacks:
            self.remove_on_set_parameters_callback(cb)
        self._param_callbacks = []
        slot = getattr(self, "slot", None)
        if slot is not None:
            if not slot.close(SLOT_JOIN_S):   # a load outlived it: no interpreter finalization at exit
                self.exit_without_finalization = True
            self.slot = None
        self.configured = False
        self.state_note = " (unconfigured)"

    # -- run_node hooks ------------------------------------------------------------------------
    def write_summary(self) -> None:
        if self.configured:
            super().write_summary()

    def destroy_node(self) -> None:
        if self.configured:
            self._teardown()
        LifecycleNode.destroy_node(self)


def main(args: list[str] | None = None) -> int:
    """Entry point (``computed_torque_managed`` console script, ``python -m``)."""
    return run_node(ManagedComputedTorqueNode, args, name="computed_torque")


if __name__ == "__main__":
    raise SystemExit(main())
