"""Learned inverse kinematics (issue 14): a recurrent pose-chain model and its BPTT inverse.

* :mod:`.chain` (numpy + Pinocchio): kinematic chains (iiwa, Panda, a generated 80-DoF arm, a
  planar test arm), the pose-chain layout and forward kinematics — the ground truth.
* :mod:`.problem` (numpy): an IK problem (per-element targets and "don't care" masks), errors.
* :mod:`.dls` (numpy + Pinocchio): the baseline, damped least squares on the Jacobian.
* :mod:`.model`, :mod:`.training`, :mod:`.solver`, :mod:`.store` (torch): the LSTM pose-chain
  model, its curriculum training, the gradient-descent inverse, model directories.

Only :mod:`.model`, :mod:`.training`, :mod:`.solver` and :mod:`.store` import torch.
"""
