"""Sub-commands of ``dynlearn-ros``; each module: ``add_arguments(parser)``, ``run(args)``.

Command modules import heavy libraries (torch, pybullet, rclpy) inside ``run`` only."""
