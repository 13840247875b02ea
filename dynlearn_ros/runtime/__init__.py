"""onnxruntime-backed predictors (no rclpy, no torch on the control path) and the model-directory
contract they load through: ``metadata`` (schema), ``validate`` (the one validator), ``golden``
(golden sequence), ``model_store`` (writing whole), ``migrate`` (format 1 -> 2), ``errors``.
See docs/models.md."""
