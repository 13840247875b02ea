"""The fault-injection matrix (docs/safety.md): each row injects one fault into a real graph
(nodes as processes, a test-side rclpy node as the driver or the attacker) or into a real
``dynlearn-ros`` command, and checks the expected counter, log line and torque bound.

:mod:`dynlearn_ros.faults.matrix` holds the rows and :func:`~dynlearn_ros.faults.matrix.run_matrix`;
``dynlearn-ros faults --json PATH`` runs them, ``test/faults/`` runs them under pytest.
"""
