"""Training the pose-chain model on Pinocchio forward kinematics with a widening-range curriculum.

Stage s of S samples configurations uniformly in the middle (s/S) of every joint's range
(10 %, 20 %, ... 100 % for S = 10), fresh from Pinocchio each stage, and trains with Adam on

    L = mean_k [ |p_k - p*_k|^2 / scale^2 + |x_k - x*_k|^2 + |z_k - z*_k|^2 ]

(positions in units of the reach so both terms are O(1)); the learning rate decays by cosine
over the last stage. A chain-relative model (``outputs="relative"``) is trained on the same loss over its
per-step outputs against the true relative transforms (element k in element k-1's frame), with
positions in units of the reach / n (one link): a local error signal at every step, which the
composed chain gives only through n compositions (``composed_weight`` x the composed loss is
added; 0 by default: on arm10, 441 Adam steps, the local loss alone gave 23 mm / 8.8 deg at the
tip, local + composed 25 mm / 11.5 deg). Errors are reported per chain element in metres and degrees.

Corner stage (``corner_share`` c > 0; 0 by default, which leaves the curriculum and its random
draws as they were): a share c of the last stage's configurations is drawn near the limits
instead of uniformly, each with k joints in the outer 5 % of their ranges and k uniform over
0 .. n (:meth:`Chain.sample_near_limits`). Under the uniform last stage alone k joints are there
at once with probability C(n, k) 0.1^k 0.9^(n-k): for the iiwa about 0.002 expected
configurations with all 7, so the network never saw the corners where the ``near_limits``
targets lie (docs/ik.md, "Near the joint limits: the cause"). With k uniform every count gets
c / (n + 1) of the stage.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from dynlearn_ros.learning.ik.chain import Chain
from dynlearn_ros.learning.ik.model import PoseChainLSTM, compose, relative


@dataclass
class TrainConfig:
    hidden: int = 128
    layers: int = 2
    stages: int = 10
    samples_per_stage: int = 8000
    epochs_per_stage: int = 3
    final_epochs: int = 10  # extra epochs at 100 % with a decaying learning rate
    batch: int = 128
    lr: float = 3e-3
    seed: int = 0
    threads: int = 1
    outputs: str = "absolute"  # or "relative" (chain-relative outputs, model.py)
    composed_weight: float = 0.0  # relative models: weight of the loss on the composed chain
    corner_share: float = 0.0  # share of the last stage drawn near the limits (module docstring)


def pose_loss(pred: torch.Tensor, target: torch.Tensor, scale: float) -> torch.Tensor:
    """Mean over batch and chain of |dp|^2/scale^2 + |dx|^2 + |dz|^2; pred/target (B, n, 9)."""
    d = pred - target
    return ((d[..., :3] / scale) ** 2).sum(-1).mean() + (d[..., 3:] ** 2).sum(-1).mean()


def chain_errors(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """Per-element errors of pose chains (B, n, 9): position (m) and orientation (deg).

    The orientation error is the rotation angle between the two frames (both rebuilt from their
    x and z axes)."""
    pos = np.linalg.norm(pred[..., :3] - true[..., :3], axis=-1)
    ang = rotation_angle(pred[..., 3:], true[..., 3:])
    return {"pos_m": pos, "rot_deg": np.degrees(ang)}


def frames_from_axes(xz: np.ndarray) -> np.ndarray:
    """(..., 6) [x | z] -> (..., 3, 3) rotation matrices (columns x, z cross x, z)."""
    x, z = xz[..., :3], xz[..., 3:]
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def rotation_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (rad) of R_a^T R_b for frames given as (..., 6) axis pairs."""
    ra, rb = frames_from_axes(a), frames_from_axes(b)
    tr = np.einsum("...ij,...ij->...", ra, rb)
    return np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0))


def evaluate(model: PoseChainLSTM, chain: Chain, q: np.ndarray) -> dict[str, np.ndarray]:
    """Per-element errors of ``model`` against Pinocchio on configurations q (B, n)."""
    true = chain.fk_batch(q)
    with torch.no_grad():
        pred = model(torch.as_tensor(q, dtype=torch.float32)).double().numpy()
    return chain_errors(pred, true)


def stage_configs(chain: Chain, rng: np.random.Generator, cfg: TrainConfig, stage: int) -> np.ndarray:
    """The (samples_per_stage, n) training configurations (rad) of curriculum stage 1 .. S: uniform
    in the middle stage / S of the ranges; in the last stage a share ``corner_share`` of them
    near the limits (k joints in the outer 5 %, k uniform over 0 .. n)."""
    if not 0.0 <= cfg.corner_share <= 1.0:
        raise ValueError(f"corner_share must be in [0, 1], got {cfg.corner_share}")
    frac = stage / cfg.stages
    corners = int(round(cfg.corner_share * cfg.samples_per_stage)) if stage == cfg.stages else 0
    q = chain.sample(rng, cfg.samples_per_stage - corners, frac)
    if corners:
        q = np.concatenate([q, chain.sample_near_limits(rng, rng.integers(0, chain.n + 1, size=corners))])
    return q


def train(chain: Chain, cfg: TrainConfig, log=print, init: PoseChainLSTM | None = None) -> tuple[PoseChainLSTM, dict]:
    """Train a :class:`PoseChainLSTM` for ``chain``; returns it and a history dict. ``init``: a
    trained model of this chain to continue from (a fine-tune: its weights, trained in place; the
    curriculum as ``cfg`` says, e.g. one stage at 100 % with ``corner_share``)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    if init is None:
        model = PoseChainLSTM(torch.as_tensor(chain.geometry), chain.scale, cfg.hidden, cfg.layers, cfg.outputs,
                              chain.tip)
    else:
        model = init.train()
        for p in model.parameters():
            p.requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = {"stages": [], "config": asdict(cfg)}
    t0 = time.perf_counter()
    total_final = cfg.final_epochs
    for stage in range(1, cfg.stages + 1):
        frac = stage / cfg.stages
        q = stage_configs(chain, rng, cfg, stage)
        y = torch.as_tensor(chain.fk_batch(q), dtype=torch.float32)
        qt = torch.as_tensor(q, dtype=torch.float32)
        y_rel = relative(y, chain.tip) if cfg.outputs == "relative" else None
        epochs = cfg.epochs_per_stage + (total_final if stage == cfg.stages else 0)
        run = 0.0  # the last epoch's summed loss (0 when the stage has no epoch)
        for epoch in range(epochs):
            if stage == cfg.stages and epoch >= cfg.epochs_per_stage and total_final:
                k = epoch - cfg.epochs_per_stage
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * k / total_final))
            perm = torch.randperm(qt.shape[0])
            run = 0.0
            for i in range(0, qt.shape[0], cfg.batch):
                idx = perm[i:i + cfg.batch]
                if cfg.outputs == "relative":
                    dp, axes = model.steps(qt[idx])
                    loss = cfg.composed_weight * pose_loss(compose(dp, axes, model.tip), y[idx], chain.scale) + pose_loss(
                        torch.cat([dp, axes], dim=-1), y_rel[idx], chain.scale / chain.n)
                else:
                    loss = pose_loss(model(qt[idx]), y[idx], chain.scale)
                opt.zero_grad()
                loss.backward()
                opt.step()
                run += float(loss.detach()) * idx.numel()
        err = evaluate(model, chain, chain.sample(rng, 500, frac))
        rec = {"stage": stage, "range_frac": frac, "loss": run / qt.shape[0],
               "ee_pos_mm": 1e3 * float(err["pos_m"][:, -1].mean()),
               "ee_rot_deg": float(err["rot_deg"][:, -1].mean()), "elapsed_s": time.perf_counter() - t0}
        history["stages"].append(rec)
        log(f"stage {stage}/{cfg.stages} range {100 * frac:.0f} %: loss {rec['loss']:.2e}, "
            f"EE {rec['ee_pos_mm']:.1f} mm {rec['ee_rot_deg']:.2f} deg ({rec['elapsed_s']:.0f} s)")
    history["train_s"] = time.perf_counter() - t0
    return model.eval(), history
