"""rosbag2 files as training data, without rclpy (the ``rosbags`` library, numpy, scipy).

* :mod:`~dynlearn_ros.bags.reader`: open a bag (rosbag2 folder with ``metadata.yaml``, or one
  ``.mcap`` / ``.db3`` file; MCAP and sqlite3), its topics and raw messages; an MCAP left without
  its summary by a killed recorder is read up to its last complete chunk
  (:mod:`~dynlearn_ros.bags.mcap_salvage`).
* :mod:`~dynlearn_ros.bags.align`: joint states and the commands applied between them, by stamp,
  into rows of the generic format (:mod:`dynlearn_ros.datasets.format`).
* :mod:`~dynlearn_ros.bags.convert`: a bag to :class:`~dynlearn_ros.datasets.format.TrajectoryData`
  (``dynlearn-ros bag to-npz``, ``train --data run.mcap``) and its ``info``.
* :mod:`~dynlearn_ros.bags.writer`: the recorder node's writer thread (chunked, flushed
  periodically, so a SIGKILL loses at most the chunk being filled).
"""
