"""IK model directories: ``model.pt`` (the pose-chain network's state dict and config) and
``metadata.json`` (kind, chain, joint names, training command and data, metrics, version)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import torch

from dynlearn_ros.learning.ik.chain import Chain, chain
from dynlearn_ros.learning.ik.model import PoseChainLSTM

KIND = "ik_pose_chain_lstm"
VERSION = 1
WEIGHTS = "model.pt"


class IKModelError(ValueError):
    """A model directory that is missing, malformed or made for another chain."""


def save(model: PoseChainLSTM, chain_: Chain, out: str | Path, *, command: list[str] | None = None,
         history: dict | None = None, metrics: dict | None = None, onnx: bool = False) -> Path:
    """Write the model directory ``out`` atomically (runtime.model_store.publish_model_dir: a
    temporary directory beside it, then a rename; on failure ``out`` is left as it was).
    ``onnx``: also ``model.onnx``, the forward pass checked through onnxruntime
    (:mod:`.onnx_export`), described under "onnx" in the metadata."""
    from dynlearn_ros.runtime.model_store import publish_model_dir  # onnxruntime: only to save

    def fill(tmp: Path) -> None:
        torch.save({"config": model.config(), "state_dict": model.state_dict()}, tmp / WEIGHTS)
        meta = {
            "kind": KIND,
            "version": VERSION,
            "chain": chain_.name,
            "joint_names": list(chain_.joint_names),
            "n_dof": chain_.n,
            "base_frame": chain_.base_frame,
            "ee_frame": chain_.model.frames[chain_.ee_frame].name,
            "pose_layout": "per DoF k: [p (3, m) | frame x axis (3) | frame z axis (3)], base frame; "
                           "last element = end-effector frame",
            "model": model.config(),
            "training_command": command or [],
            "data": "forward kinematics by Pinocchio of configurations uniform in a widening middle "
                    "fraction of the joint ranges (curriculum), generated during training",
            "history": history or {},
            "metrics": metrics or {},
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if onnx:
            from dynlearn_ros.learning.ik.onnx_export import ONNX_FILE, export_onnx

            meta["onnx"] = export_onnx(model, chain_, tmp / ONNX_FILE)
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2))

    return publish_model_dir(out, fill)


def load(path: str | Path, expect_chain: str | None = None) -> tuple[PoseChainLSTM, Chain, dict]:
    """Load a model directory; raises :class:`IKModelError` with the reason when it is unusable."""
    path = Path(path)
    try:
        meta = json.loads((path / "metadata.json").read_text())
        blob = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise IKModelError(f"{path}: not a readable IK model directory ({exc})") from exc
    if meta.get("kind") != KIND:
        raise IKModelError(f"{path}: kind {meta.get('kind')!r}, expected {KIND!r}")
    if expect_chain and meta.get("chain") != expect_chain:
        raise IKModelError(f"{path}: made for chain {meta.get('chain')!r}, not {expect_chain!r}")
    c = chain(meta["chain"])
    if list(c.joint_names) != meta.get("joint_names"):
        raise IKModelError(f"{path}: joint names {meta.get('joint_names')} differ from {list(c.joint_names)}")
    cfg = blob["config"]
    model = PoseChainLSTM(torch.as_tensor(c.geometry), c.scale, cfg["hidden"], cfg["layers"],
                          cfg.get("outputs", "absolute"), c.tip)
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise IKModelError(f"{path}: weights do not fit the model ({exc})") from exc
    for p in model.parameters():
        if not torch.isfinite(p).all():
            raise IKModelError(f"{path}: non-finite weights")
        p.requires_grad_(False)
    return model.eval(), c, meta
