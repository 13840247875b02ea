"""Learning (torch / gpytorch), cut by role: ``models`` (RKN cell, ac-RKN, RNN / FFNN baselines,
GP models, the novelty term), ``training`` (loops, GP runs, novelty calibration), ``evaluation``
(metrics, GP studies, the inverse-dynamics table) and the ONNX export (``export``, ``acrkn_onnx``,
``gp.export``). Configuration objects in, result dicts out: no argparse here and no import of
``dynlearn_ros.commands``; data comes through ``dynlearn_ros.datasets``, tables and figures are
drawn by ``dynlearn_ros.reporting``. Never imports rclpy."""
