"""``dynlearn-ros train``: train one model on a data set's training split, keep the best
validation checkpoint in ``--out/checkpoint.pt`` and a summary in ``--out/train.json``."""

from __future__ import annotations

import argparse

from dynlearn_ros.commands._common import (
    GP_KINDS,
    add_common,
    add_gp_architecture_arguments,
    command_line,
    direction_of,
    gp_dispatch,
    sequence_hparams,
)


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """--split / --gap / --test-file (sequence models; GP models keep their own split)."""
    parser.add_argument("--split", default=None, metavar="TRAIN,VAL,TEST",
                        help="fractions of the episodes (>= 5 episodes) or of the rows in time (contiguous "
                             "blocks), default 0.7,0.15,0.15; with --test-file two numbers TRAIN,VAL")
    parser.add_argument("--gap", type=int, default=0,
                        help="rows dropped before the validation and test blocks of a contiguous split")
    parser.add_argument("--test-file", default=None,
                        help="a separate data set (name or .npz, same joints) used whole as the test split")
    parser.add_argument("--protocol", choices=("episode", "paper-leaky"), default=None,
                        help="episode (default): whole episodes or time blocks per part; paper-leaky: the "
                             "ac-RKN paper's protocol, LEAKY (every episode cut into 40-row windows, windows "
                             "shuffled over train/val/test, default fractions 0.72,0.08,0.2); for comparison "
                             "with the paper's figures only, never for a claim about unseen data")


def split_spec(args: argparse.Namespace, default_none: bool = False):
    """The :class:`~dynlearn_ros.datasets.splits.SplitSpec` of the options; None when none was
    given and ``default_none`` (eval then uses the split recorded by train). Exits with the
    reason on a malformed option."""
    from dynlearn_ros.datasets.splits import SplitSpec

    if default_none and args.split is None and not args.gap and args.test_file is None and args.protocol is None:
        return None
    try:
        return SplitSpec.parse(args.split, args.gap, args.test_file, args.protocol or "episode")
    except ValueError as exc:
        raise SystemExit(f"--split/--gap/--test-file: {exc}") from exc


def add_task_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=("sequence", "static"), default="sequence",
                        help="sequence (default): time-ordered windows; static: every row (q, qd, qdd -> tau) "
                             "on its own, for logs that are not sequences (models ffnn, svdkl/svgp/dkl; the "
                             "linear and training-mean rows come with eval)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    add_split_arguments(parser)
    add_task_argument(parser)
    parser.add_argument("--window", type=int, default=None, help="rows per training window "
                        "(default 40 forward, 50 inverse)")
    parser.add_argument("--stride", type=int, default=None, help="rows between window starts "
                        "(default window // 4)")
    parser.add_argument("--lod", type=int, default=15, help="latent observation size m (RNN hidden 2m)")
    parser.add_argument("--num-basis", type=int, default=15)
    parser.add_argument("--hidden", type=int, default=120, help="encoder/decoder hidden width")
    parser.add_argument("--mask-frac", type=float, default=0.75, help="forward: observations removed")
    parser.add_argument("--mask-keep", type=int, default=None,
                        help="forward: first rows of every window always observed (default 1; 5 with "
                             "--protocol paper-leaky, as the paper)")
    parser.add_argument("--ctrl-layers", type=int, default=1,
                        help="hidden layers (of --hidden units) of the ac-RKN control MLP (paper: 3)")
    parser.add_argument("--lr-schedule", choices=("none", "cosine"), default="none",
                        help="cosine: decay the learning rate to lr/100 over --epochs or --time-budget")
    parser.add_argument("--patience", type=int, default=None,
                        help="stop after this many epochs without a better validation loss")
    parser.add_argument("--time-budget", type=float, default=None, metavar="CPU_S",
                        help="stop when the training process has used this many CPU seconds")
    parser.add_argument("--rollout-frac", type=float, default=0.0,
                        help="forward: fraction of windows run free (no observation) after "
                             "--rollout-context rows, with a loss on the accumulated state error")
    parser.add_argument("--rollout-context", type=int, default=10)
    parser.add_argument("--rollout-weight", type=float, default=1.0)
    parser.add_argument("--fwd-output", choices=("difference", "acceleration", "acceleration_residual"),
                        default="difference",
                        help="ac-RKN forward decoder: the whole next difference (paper) or only the "
                             "acceleration, q and qd following by semi-implicit Euler (needs --obs-qd); "
                             "acceleration_residual: the acceleration as a change of the last one "
                             "(constant acceleration when the decoder gives 0)")
    parser.add_argument("--base", choices=("none", "arx"), default="none",
                        help="forward ac-RKN / RKN: 'arx' = learn the residual of a least-squares ARX(2, 2) "
                             "prediction fitted on the training split (learning/models/arx_base.py)")
    parser.add_argument("--residual-clip", action="store_true",
                        help="with --base arx: clip the learned residual to the largest |ARX one-step "
                             "residual| on the training rows (bounded free runs; learning/models/arx_base.py)")
    parser.add_argument("--lam", type=float, default=0.1, help="inverse: weight of the forward RMSE")
    parser.add_argument("--act-target", choices=("difference", "absolute"), default="difference",
                        help="inverse: predict a_t - a_{t-1} (paper) or a_t (closed-loop use, see "
                             "learning/models/sequence.py)")
    parser.add_argument("--own-action-frac", type=float, default=0.0,
                        help="inverse models with --act-target absolute: fraction of training windows "
                             "that, from a random step on, read the model's own previous prediction "
                             "instead of the recorded action (scheduled sampling, for closed-loop use)")
    parser.add_argument("--obs-qd", action="store_true", help="forward: observe [q, qd] instead of q")
    parser.add_argument("--subsample", type=int, default=1,
                        help="keep every k-th row of each episode (after the split; dt *= k)")
    parser.add_argument("--no-progress", action="store_true")
    add_gp_architecture_arguments(parser.add_argument_group("svdkl / svgp / dkl"))


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.commands.bag import resolve_bag_data

    resolve_bag_data(args)   # --data run.mcap (a rosbag2): converted to the generic format first
    if args.task == "static" and args.model not in GP_KINDS:
        return _train_static(args)
    if args.model in GP_KINDS:
        if split_spec(args, default_none=True) is not None:
            raise SystemExit("--split/--gap/--test-file apply to the sequence models; the GP models use their own split")
        return gp_dispatch(args, "train")
    if args.model == "analytic":
        print("analytic: nothing to train (Pinocchio RNEA); use `dynlearn-ros eval --model analytic`")
        return 0
    from dynlearn_ros.learning.training.sequence import TrainConfig
    from dynlearn_ros.learning.training.sequence_runs import train_run

    direction = direction_of(args)
    if args.fwd_output != "difference" and not (args.obs_qd and args.model in ("acrkn-fwd", "rkn")):
        raise SystemExit(f"train: --fwd-output {args.fwd_output} needs --model acrkn-fwd (or rkn) with --obs-qd")
    if args.base == "arx" and not (direction == "forward" and args.model in ("acrkn-fwd", "rkn")
                                   and args.fwd_output == "difference"):
        raise SystemExit("train: --base arx needs a forward --model acrkn-fwd (or rkn) with --fwd-output difference")
    if args.residual_clip and args.base != "arx":
        raise SystemExit("train: --residual-clip needs --base arx")
    window = args.window or (40 if direction == "forward" else 50)
    epochs, batch_size, lr = sequence_hparams(args)
    tcfg = TrainConfig(
        kind=args.model, direction=direction, epochs=epochs, batch_size=batch_size, lr=lr,
        seed=args.seed, window=window, stride=args.stride or max(1, window // 4), mask_frac=args.mask_frac,
        lam=args.lam, obs_qd=args.obs_qd, lod=args.lod, num_basis=args.num_basis, hidden=args.hidden,
        act_target=args.act_target, own_action_frac=args.own_action_frac,
        max_train_samples=args.max_train_samples, threads=args.threads,
        mask_keep=args.mask_keep if args.mask_keep is not None else (5 if args.protocol == "paper-leaky" else 1),
        ctrl_layers=args.ctrl_layers, lr_schedule=args.lr_schedule, patience=args.patience,
        time_budget_s=args.time_budget, rollout_frac=args.rollout_frac, rollout_context=args.rollout_context,
        rollout_weight=args.rollout_weight, fwd_output=args.fwd_output, base=args.base,
        residual_clip=args.residual_clip,
    )
    try:
        from dynlearn_ros.learning.training.sequence import check_schedule

        check_schedule(tcfg)
    except ValueError as exc:
        raise SystemExit(f"train: {exc}") from exc
    train_run(str(args.data), tcfg, args.out, args.subsample, progress=not args.no_progress,
              command=command_line(args), split=split_spec(args))
    return 0


def _train_static(args: argparse.Namespace) -> int:
    """``train --task static --model ffnn``: a feed-forward network on single rows."""
    if args.model != "ffnn":
        raise SystemExit(f"train --task static: model ffnn or one of {', '.join(GP_KINDS)}, not {args.model}")
    from dynlearn_ros.learning.training.static import StaticTrainConfig, static_run

    cfg = StaticTrainConfig(kind="ffnn", hidden=args.hidden, epochs=args.epochs or 50,
                            batch_size=args.batch_size or 256, lr=args.lr or 1e-3, seed=args.seed, threads=args.threads,
                            max_train_samples=args.max_train_samples, time_budget_s=args.time_budget,
                            patience=args.patience)
    try:
        static_run(str(args.data), cfg, args.out, split=split_spec(args), command=command_line(args),
                   progress=not args.no_progress)
    except ValueError as exc:
        raise SystemExit(f"train --task static: {exc}") from exc
    return 0
