"""``dynlearn-ros train``: train one model on a data set's training split, keep the best
validation checkpoint in ``--out/checkpoint.pt`` and a summary in ``--out/train.json``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dynlearn_ros.commands._common import (
    GP_KINDS,
    add_common,
    add_gp_architecture_arguments,
    command_line,
    direction_of,
    gp_dispatch,
    sequence_hparams,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.add_argument("--window", type=int, default=None, help="rows per training window "
                        "(default 40 forward, 50 inverse)")
    parser.add_argument("--stride", type=int, default=None, help="rows between window starts "
                        "(default window // 4)")
    parser.add_argument("--lod", type=int, default=15, help="latent observation size m (RNN hidden 2m)")
    parser.add_argument("--num-basis", type=int, default=15)
    parser.add_argument("--hidden", type=int, default=120, help="encoder/decoder hidden width")
    parser.add_argument("--mask-frac", type=float, default=0.75, help="forward: observations removed")
    parser.add_argument("--lam", type=float, default=0.1, help="inverse: weight of the forward RMSE")
    parser.add_argument("--act-target", choices=("difference", "absolute"), default="difference",
                        help="inverse: predict a_t - a_{t-1} (paper) or a_t (closed-loop use, see "
                             "learning/models/sequence.py)")
    parser.add_argument("--own-action-frac", type=float, default=0.0,
                        help="acrkn-inv with --act-target absolute: fraction of training windows "
                             "that, from a random step on, read the model's own previous prediction "
                             "instead of the recorded action (scheduled sampling, for closed-loop use)")
    parser.add_argument("--obs-qd", action="store_true", help="forward: observe [q, qd] instead of q")
    parser.add_argument("--subsample", type=int, default=1,
                        help="keep every k-th row of each episode (after the split; dt *= k)")
    parser.add_argument("--no-progress", action="store_true")
    add_gp_architecture_arguments(parser.add_argument_group("svdkl / svgp / dkl"))


def run(args: argparse.Namespace) -> int:
    if args.model in GP_KINDS:
        return gp_dispatch(args, "train")
    if args.model == "analytic":
        print("analytic: nothing to train (Pinocchio RNEA); use `dynlearn-ros eval --model analytic`")
        return 0
    from dynlearn_ros.datasets.catalog import load_dataset
    from dynlearn_ros.datasets.filtering import subsample
    from dynlearn_ros.datasets.splits import train_val_test
    from dynlearn_ros.learning.training.sequence import TrainConfig, data_hash, fit, save_checkpoint

    direction = direction_of(args)
    window = args.window or (40 if direction == "forward" else 50)
    epochs, batch_size, lr = sequence_hparams(args)
    tcfg = TrainConfig(
        kind=args.model, direction=direction, epochs=epochs, batch_size=batch_size, lr=lr,
        seed=args.seed, window=window, stride=args.stride or max(1, window // 4), mask_frac=args.mask_frac,
        lam=args.lam, obs_qd=args.obs_qd, lod=args.lod, num_basis=args.num_basis, hidden=args.hidden,
        act_target=args.act_target, own_action_frac=args.own_action_frac,
        max_train_samples=args.max_train_samples, threads=args.threads,
    )
    data = load_dataset(args.data)
    train, val, _test = train_val_test(data, seed=args.seed)
    train, val = subsample(train, args.subsample), subsample(val, args.subsample)
    ckpt = fit(train, val, tcfg, progress=not args.no_progress, data_name=str(args.data))
    ckpt["data_hash"] = data_hash(data)
    ckpt["subsample"] = args.subsample
    ckpt["train_command"] = command_line(args)
    out = Path(args.out or f"runs/{Path(str(args.data)).stem}/{args.model}-{direction}-s{args.seed}")
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(ckpt, out / "checkpoint.pt")
    summary = {k: v for k, v in ckpt.items() if k not in ("state_dict",)}
    (out / "train.json").write_text(json.dumps(summary, indent=1))
    print(f"{args.model} ({direction}): best epoch {ckpt['best_epoch']} val loss {ckpt['best_val_loss']:.4f}, "
          f"{ckpt['wall_s']:.1f} s -> {out}")
    return 0
