"""``dynlearn-ros export``: a trained run -> ONNX model directory (model.onnx + metadata.json +
golden.npz, docs/models.md).

    dynlearn-ros export --model acrkn-inv --run runs/panda_gaz2019/acrkn-inv-s0 --out models/acrkn_panda
    dynlearn-ros export --run runs/mine/ffnn-static-s0 --out models/ffnn_mine   # train --task static

A static FFNN run is written with the SVDKL directory's signature (kind "svdkl", model "ffnn":
x = [q, qd, qdd] -> torque mean and variance), so the controller runs it with ``model_kind:=svdkl``.

The test split of the run's data set is evaluated and stored in the metadata (``metrics``; for
inverse models the predicted std also gives ``sigma_bounds``, computed by
``learning.export.sigma_bounds_from_std``) unless ``--no-metrics``. An export into an existing
directory writes the next ``model_version`` (or ``--model-version``) and replaces it only once
the new directory validated.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from dynlearn_ros.commands._common import GP_KINDS, add_common, gp_dispatch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.set_defaults(data=None, model=None)
    parser.add_argument("--run", default=None, help="run directory written by train (checkpoint.pt)")
    parser.add_argument("--no-metrics", action="store_true", help="skip the test-split evaluation")
    parser.add_argument("--model-version", type=int, default=None,
                        help="model_version to write (default: one more than the directory holds)")
    parser.add_argument("--novelty", action="store_true",
                        help="svdkl: add the run's calibrated novelty term to the exported variance "
                             "(dynlearn-ros novelty first; docs/results_svdkl.md)")


def _is_static_run(run: Path) -> bool:
    """A ``train --task static`` run (its checkpoint holds ``static_config``)."""
    import torch

    path = run / "checkpoint.pt"
    if not path.is_file():
        raise SystemExit(f"export: no checkpoint.pt in {run}")
    return "static_config" in torch.load(path, map_location="cpu", weights_only=False)


def _export_static(args: argparse.Namespace) -> int:
    """The static FFNN -> an svdkl-kind model directory (learning/export/static.py)."""
    from dynlearn_ros.learning.export.static import export_static_run

    if args.model not in (None, "ffnn"):
        raise SystemExit(f"--model {args.model} but {args.run} holds a static ffnn model")
    if args.no_metrics:
        raise SystemExit("export of a static run needs its test split (sigma bounds, golden rows): drop --no-metrics")
    how = shlex.join(getattr(args, "command_line", ["dynlearn-ros", *sys.argv[1:]]))
    try:
        out, metrics = export_static_run(args.run, args.out, args.data, command=how, model_version=args.model_version)
    except ValueError as exc:
        raise SystemExit(f"export: {exc}") from None
    print(f"exported ffnn (static) -> {out} ({(out / 'model.onnx').stat().st_size / 1e3:.0f} kB), test RMSE "
          f"{metrics['rmse']:.4g} N*m; run it with model_kind:=svdkl")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.model in GP_KINDS:
        return gp_dispatch(args, "export")
    if not args.run or not args.out:
        raise SystemExit("export needs --run (a train output directory) and --out (the model directory)")
    from dynlearn_ros.datasets.catalog import load_dataset as load_data
    from dynlearn_ros.datasets.filtering import subsample
    from dynlearn_ros.datasets.normalize import Stats
    from dynlearn_ros.datasets.splits import SplitSpec, split_data
    from dynlearn_ros.learning.evaluation.sequence import forward_multistep, inverse_predict, torque_errors
    from dynlearn_ros.learning.export.acrkn import write_model_dir
    from dynlearn_ros.learning.training.sequence import load_checkpoint

    if _is_static_run(Path(args.run)):
        return _export_static(args)
    model, ckpt = load_checkpoint(Path(args.run) / "checkpoint.pt")
    if args.model and args.model != ckpt["model_config"]["kind"]:
        raise SystemExit(f"--model {args.model} but the run holds a {ckpt['model_config']['kind']} model")
    if ckpt["model_config"].get("base", "none") != "none":
        raise SystemExit(f"export: {args.run} holds a model on an ARX base (train --base "
                         f"{ckpt['model_config']['base']}), which the ONNX step graph does not carry (yet)")
    metrics: dict = {}
    test_std = None
    data_command = ""
    if not args.no_metrics:
        data_name = args.data or ckpt.get("data")
        data = load_data(data_name)
        meta = data.meta or {}
        # how a generated .npz was made (`collect` writes command_line, `data vgain` command)
        data_command = str(meta.get("command") or meta.get("command_line") or "")
        # the split the run was trained with (--split/--gap/--test-file; default 0.7 / 0.15 / 0.15)
        _tr, _va, test = split_data(data, seed=ckpt["train_config"]["seed"], spec=SplitSpec.from_dict(ckpt.get("split")))
        test = subsample(test, int(ckpt.get("subsample", 1)))
        stats = Stats.from_dict(ckpt["stats"])
        if ckpt["model_config"]["direction"] == "inverse":
            tau_hat, test_std, rows = inverse_predict(model, stats, test)
            metrics = torque_errors(tau_hat, test.tau[rows], test_std)
        else:
            metrics = forward_multistep(model, stats, test, obs_qd=ckpt["train_config"]["obs_qd"])
        metrics["split"] = f"test split of {data_name}, seed {ckpt['train_config']['seed']}"
    how = shlex.join(getattr(args, "command_line", ["dynlearn-ros", *sys.argv[1:]]))
    out = write_model_dir(model, ckpt, Path(args.out), metrics=metrics, test_std=test_std, command=how,
                          data_command=data_command, model_version=args.model_version)
    print(f"exported {ckpt['model_config']['kind']} -> {out} ({(out / 'model.onnx').stat().st_size / 1e3:.0f} kB)")
    return 0
