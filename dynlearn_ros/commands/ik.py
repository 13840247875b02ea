"""``dynlearn-ros ik train|eval|export``: the learned inverse kinematics (docs/ik.md).

    dynlearn-ros ik train --chain iiwa --seed 0 --out runs/ik/iiwa-s0
    dynlearn-ros ik eval --model runs/ik/iiwa-s0 runs/ik/iiwa-s1 --targets 200 --json ik_iiwa.json --md ik_iiwa.md
    dynlearn-ros ik export --run runs/ik/iiwa-s0 --out models/ik_iiwa --targets 200

``train`` writes a model directory (``model.pt`` + ``metadata.json``) with the training history;
``eval`` measures the forward model per chain element and IK success against Pinocchio's
damped least squares (one seed per model directory given, the target seed = the model's seed);
``tasks`` runs the seed's three tasks on the 40-joint arm (figure + JSON) and times both
solvers against the joint count; ``export`` copies a run into a shipped model directory with its evaluation in ``metrics``
(``--onnx``: plus ``model.onnx``, the forward pass, checked against torch through onnxruntime).
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ik_verb", metavar="VERB", required=True)
    t = sub.add_parser("train", help="train a pose-chain LSTM on Pinocchio forward kinematics")
    t.add_argument("--chain", default="iiwa", help="iiwa, panda, arm40, armN or planarN")
    t.add_argument("--out", required=True, help="model directory to write")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--hidden", type=int, default=128)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--stages", type=int, default=10, help="curriculum stages (range 1/S, 2/S, ... 100 %%)")
    t.add_argument("--samples-per-stage", type=int, default=20000)
    t.add_argument("--epochs-per-stage", type=int, default=2)
    t.add_argument("--final-epochs", type=int, default=10, help="extra epochs at 100 %% with a cosine-decaying lr")
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--threads", type=int, default=1, help="torch threads (1: see docs/ik.md, training)")
    t.add_argument("--outputs", default="absolute", choices=("absolute", "relative"),
                   help="absolute: each element in the base frame; relative: in the previous element's frame, composed")
    t.add_argument("--init", default=None,
                   help="continue from this model directory (a fine-tune; hidden/layers/outputs are the model's)")
    t.add_argument("--corner-share", type=float, default=0.0,
                   help="share of the last stage's configurations drawn near the joint limits (k of n joints "
                        "in the outer 5 %%, k uniform over 0..n; docs/ik.md)")
    t.add_argument("--composed-weight", type=float, default=0.0,
                   help="relative models: weight of the loss on the composed chain (the per-step loss has weight 1)")

    e = sub.add_parser("eval", help="forward-model errors and IK success vs damped least squares")
    e.add_argument("--model", nargs="+", default=[], help="model directories (one per seed)")
    e.add_argument("--chain", default=None, help="without --model: evaluate only the DLS baseline on this chain")
    e.add_argument("--targets", type=int, default=200, help="targets per family and seed (0: the forward table only)")
    e.add_argument("--families", nargs="+", default=None, help="random near_limits near_singular")
    e.add_argument("--masks", nargs="+", default=None, help="pose position")
    e.add_argument("--corrections", type=int, default=5, help="target-correction rounds")
    e.add_argument("--solvers", nargs="+", default=None,
                   help="dls learned learned+correction learned+correction+polish learned-gn (default: the first three)")
    e.add_argument("--starts", type=int, default=1, help="starts per target: home, then seeded random ones (multi-start)")
    e.add_argument("--polish", type=int, default=100, help="Levenberg-Marquardt steps through the model's Jacobian (polish, learned-gn)")
    e.add_argument("--until-success", action="store_true",
                   help="learned solvers: start j only for targets no earlier start solved (same success, less work; DLS always)")
    e.add_argument("--start-set", default="random", choices=("random", "neighbour"),
                   help="starts after home: seeded random ones, or the nearest poses of a table over the full ranges")
    e.add_argument("--single", type=int, default=10, help="targets also solved one at a time for the single-request time")
    e.add_argument("--seeds", type=int, nargs="+", default=None, help="target seeds (default: 0, 1, ...)")
    e.add_argument("--json", default=None)
    e.add_argument("--md", default=None)

    k = sub.add_parser("tasks", help="the seed's three tasks on the 40-joint arm + joint-count scaling")
    k.add_argument("--model", default=None, help="arm40 model directory (without: DLS only)")
    k.add_argument("--corrections", type=int, default=10)
    k.add_argument("--max-iter", type=int, default=300, help="learned solver: iterations per descent")
    k.add_argument("--polish", type=int, default=100,
                   help="learned-gn: Levenberg-Marquardt steps through the model's Jacobian per point (0: not run)")
    k.add_argument("--json", default=None)
    k.add_argument("--png", default=None, help="figure of the three tasks")
    k.add_argument("--scaling", type=int, nargs="*", default=[5, 10, 20, 40],
                   help="joint counts for the timing comparison (empty: skip)")
    k.add_argument("--rounds", type=int, default=3,
                   help="interleaved repetitions of the timing sweep (median; exponent spread over rounds)")
    k.add_argument("--scaling-targets", type=int, default=5, help="targets per joint count and round (fresh each round)")
    k.add_argument("--fit-from", type=int, default=40, help="also fit the growth exponents over the DoF >= this")
    k.add_argument("--fit-to", type=int, default=None, help="also fit the growth exponents over the DoF <= this")
    k.add_argument("--md", default=None, help="write the timing tables (markdown) here")
    k.add_argument("--no-tasks", action="store_true", help="only the timing comparison")
    k.add_argument("--scaling-chain-every", type=int, default=None, metavar="M",
                   help="chain targets: also constrain the position of every M-th joint's frame "
                        "(the end effector's pose as before); adds the learned gradient solver "
                        "(--max-iter, --corrections)")
    k.add_argument("--scaling-solvers", nargs="+", default=None,
                   choices=("dls", "dls_fd", "learned", "broyden", "broyden_once", "gradient"),
                   help="time only these solvers (default: all that run; learned = learned-gn, "
                        "broyden = learned-broyden, gradient = learned gradient + correction)")

    d = sub.add_parser("diagnose", help="near the joint limits: model accuracy vs limits, true-Jacobian and start variants")
    d.add_argument("--model", required=True, help="iiwa or panda model directory")
    d.add_argument("--seed", type=int, default=0, help="target seed (as ik eval's: the same near_limits targets)")
    d.add_argument("--targets", type=int, default=100)
    d.add_argument("--starts", type=int, default=5)
    d.add_argument("--per-k", type=int, default=100, help="configurations per count of joints near a limit")
    d.add_argument("--solvers", nargs="+", default=["dls", "learned-gn", "gn-true-jacobian", "learned-broyden"])
    d.add_argument("--start-sets", nargs="+", default=["random", "neighbour"], choices=("random", "neighbour"),
                   help="random: home + seeded random starts (ik eval's); neighbour: home + nearest table poses")
    d.add_argument("--json", default=None)
    d.add_argument("--md", default=None)
    d.add_argument("--png", default=None, help="figure: network error vs joints near limits; success vs starts")

    a = sub.add_parser("aggregate", help="mean ± sample sd over seeds of `ik eval --json` results")
    a.add_argument("files", nargs="+", help="ik eval JSONs (each run's seed is read from the file)")
    a.add_argument("--json", default=None)
    a.add_argument("--md", default=None)
    x = sub.add_parser("export", help="a trained run -> a shipped model directory with metrics")
    x.add_argument("--run", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--targets", type=int, default=100, help="IK targets evaluated into the metadata (0: none)")
    x.add_argument("--onnx", action="store_true",
                   help="also write model.onnx (the forward pass, checked against torch through onnxruntime)")
    x.add_argument("--eval-json", nargs="*", default=[],
                   help="`ik eval --json` outputs of this run to record in the metadata's metrics (command and IK tables)")


def _train(args: argparse.Namespace) -> int:
    from dynlearn_ros.learning.ik.chain import chain
    from dynlearn_ros.learning.ik.evaluation import forward_table
    from dynlearn_ros.learning.ik.store import save
    from dynlearn_ros.learning.ik.training import TrainConfig, train

    c = chain(args.chain)
    init = None
    if args.init:
        from dynlearn_ros.learning.ik.store import IKModelError, load

        try:
            init, c, _ = load(args.init, expect_chain=c.name)
        except IKModelError as exc:
            raise SystemExit(f"ik train --init: {exc}") from None
        args.hidden, args.layers, args.outputs = init.config()["hidden"], init.config()["layers"], init.outputs
    cfg = TrainConfig(hidden=args.hidden, layers=args.layers, stages=args.stages,
                      samples_per_stage=args.samples_per_stage, epochs_per_stage=args.epochs_per_stage,
                      final_epochs=args.final_epochs, batch=args.batch, lr=args.lr, seed=args.seed,
                      threads=args.threads, outputs=args.outputs,
                      composed_weight=args.composed_weight, corner_share=args.corner_share)
    model, history = train(c, cfg, init=init)
    if args.init:
        history["init"] = str(args.init)
    fwd = forward_table(model, c, 2000, 10_000 + args.seed)
    save(model, c, args.out, command=getattr(args, "command_line", None), history=history,
         metrics={"forward": fwd})
    print(f"wrote {args.out}: {history['train_s']:.0f} s; EE error {fwd['pos_mm_mean'][-1]:.1f} mm, "
          f"{fwd['rot_deg_mean'][-1]:.2f} deg (mean over 2000 configurations, full ranges)")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import torch

    from dynlearn_ros.learning.ik.chain import chain
    from dynlearn_ros.learning.ik.evaluation import FAMILIES, MASKS, SOLVERS, forward_table, ik_table
    from dynlearn_ros.learning.ik.store import load

    torch.set_num_threads(1)
    runs = []
    if args.model:
        for i, path in enumerate(args.model):
            model, c, meta = load(path)
            seed = args.seeds[i] if args.seeds and i < len(args.seeds) else i
            runs.append((path, model, c, seed))
    elif args.chain:
        c = chain(args.chain)
        runs = [(None, None, c, s) for s in (args.seeds or [0])]
    else:
        raise SystemExit("ik eval needs --model DIR ... or --chain NAME")
    out = {"command": getattr(args, "command_line", None), "runs": []}
    for path, model, c, seed in runs:
        rec = {"model": path, "chain": c.name, "seed": seed}
        if model is not None:
            rec["forward"] = forward_table(model, c, 2000, 10_000 + seed)
        rec["ik"] = {} if args.targets == 0 else ik_table(model, c, args.targets, seed, args.families or FAMILIES,
                             args.masks or MASKS, args.corrections, args.single,
                             solvers=tuple(args.solvers or SOLVERS[:3]), starts=args.starts, polish=args.polish,
                             until_success=args.until_success, start_set=args.start_set)
        out["runs"].append(rec)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    md = markdown(out)
    if args.md:
        Path(args.md).write_text(md)
    print(md)
    return 0


def markdown(res: dict) -> str:
    """Tables: forward error per element (mean over seeds) and IK summaries per seed."""
    import numpy as np

    lines = []
    if res.get("command"):
        lines += [f"`{shlex.join(res['command'])}`", ""]
    fwd = [r["forward"] for r in res["runs"] if "forward" in r]
    if fwd:
        n = len(fwd[0]["pos_mm_mean"])
        lines += ["| element | position error mm (mean ± sd over seeds) | p95 mm | orientation error deg | p95 deg |",
                  "|---|---|---|---|---|"]
        for k in range(n):
            pm = [f["pos_mm_mean"][k] for f in fwd]
            rm = [f["rot_deg_mean"][k] for f in fwd]
            lines.append(f"| {k + 1}{' (EE)' if k == n - 1 else ''} | {np.mean(pm):.1f} ± {np.std(pm):.1f} | "
                         f"{np.mean([f['pos_mm_p95'][k] for f in fwd]):.1f} | {np.mean(rm):.2f} ± {np.std(rm):.2f} | "
                         f"{np.mean([f['rot_deg_p95'][k] for f in fwd]):.2f} |")
        lines.append("")
    lines += ["| seed | targets | mask | solver | starts | success | median pos mm | median rot deg | iterations | "
              "corrections | ms/target batched (mean, p95) | ms single target | success within 1, 2, ... starts |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["runs"]:
        for fam, by_mask in r["ik"].items():
            for mask, by_solver in by_mask.items():
                for name, s in by_solver.items():
                    lines.append(f"| {r['seed']} | {fam} ({s['n']}) | {mask} | {name} | {s.get('starts', 1)}{' (neighbour)' if s.get('start_set') == 'neighbour' else ''} | {100 * s['success']:.1f} % | "
                                 f"{s['pos_mm_median']:.2f} | {s['rot_deg_median']:.2f} | {s['iterations_mean']:.0f} | "
                                 f"{s['corrections_mean']:.1f} | {s['solve_ms_mean']:.1f}, {s['solve_ms_p95']:.1f} | "
                                 f"{s.get('single_ms_mean') or float('nan'):.1f} | "
                                 f"{', '.join(f'{100 * x:.1f}' for x in s.get('success_by_starts', []))} |")
    return "\n".join(lines) + "\n"


def _tasks(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from dynlearn_ros.learning.ik.chain import chain
    from dynlearn_ros.learning.ik.dls import DLSIK
    from dynlearn_ros.learning.ik.scaling import growth_exponents, linear_costs, markdown, scaling
    from dynlearn_ros.learning.ik.solver import LearnedIK
    from dynlearn_ros.learning.ik.store import load
    from dynlearn_ros.learning.ik.tasks import plot_tasks, run_tasks

    torch.set_num_threads(1)
    c = chain("arm40")
    solvers = {"dls": DLSIK(c)}
    if args.model:
        model, c, _ = load(args.model, expect_chain="arm40")
        if args.corrections:
            solvers["learned+correction"] = LearnedIK(model, c, corrections=args.corrections, max_iter=args.max_iter)
        if args.polish:
            solvers["learned-gn"] = LearnedIK(model, c, max_iter=0, polish=args.polish)
    q_start = c.sample(np.random.default_rng(0), 1, 0.3)[0]
    out = {"command": getattr(args, "command_line", None)}
    if not args.no_tasks:
        out["tasks"] = run_tasks(solvers, c, q_start)
    if args.png and not args.no_tasks:
        plot_tasks(out["tasks"], c, q_start, args.png)
    if args.scaling:
        relative = args.model and model.outputs == "relative"
        rows = scaling(tuple(args.scaling), model=model if relative else None, polish=args.polish or 100,
                       rounds=args.rounds, targets=args.scaling_targets, chain_every=args.scaling_chain_every,
                       corrections=args.corrections, max_iter=args.max_iter, solvers=args.scaling_solvers)
        dofs = [r["dof"] for r in rows]
        fits = {f"{min(dofs)} to {max(dofs)} DoF": growth_exponents(rows)}
        if sum(d >= args.fit_from for d in dofs) >= 2 and min(dofs) < args.fit_from:
            fits[f"{args.fit_from} to {max(dofs)} DoF"] = growth_exponents(rows, args.fit_from)
        if args.fit_to is not None and sum(d <= args.fit_to for d in dofs) >= 2 and max(dofs) > args.fit_to:
            fits[f"{min(dofs)} to {args.fit_to} DoF"] = growth_exponents(rows, max_dof=args.fit_to)
        out["scaling"], out["scaling_fit"], out["scaling_costs"] = rows, fits, linear_costs(rows)
        if len(rows) >= 3:
            out["scaling_costs_quadratic"] = linear_costs(rows, 2)
        md = markdown(rows, fits)
        print(md)
        if args.md:
            Path(args.md).write_text((f"`{shlex.join(out['command'])}`\n\n" if out["command"] else "") + md)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from dynlearn_ros.learning.ik.diagnosis import (
        TrueJacobianGN,
        accuracy_by_limits,
        neighbour_starts,
        plot_diagnosis,
    )
    from dynlearn_ros.learning.ik.evaluation import START_SEED, problem_for, solver_variants, target_configs
    from dynlearn_ros.learning.ik.multistart import solve_multistart, start_configs
    from dynlearn_ros.learning.ik.store import load

    torch.set_num_threads(1)
    model, c, _ = load(args.model)
    out = {"command": getattr(args, "command_line", None), "chain": c.name, "seed": args.seed,
           "accuracy": accuracy_by_limits(model, c, args.per_k, args.seed)}
    # the same targets and random starts as `ik eval --families near_limits ... --seeds SEED`
    qs = target_configs(c, "near_limits", args.targets, np.random.default_rng(args.seed))
    problems = [problem_for(c, pc, "pose") for pc in c.fk_batch(qs)]
    learned = [n for n in args.solvers if n != "gn-true-jacobian"]
    solvers = solver_variants(model, c, learned)
    if "gn-true-jacobian" in args.solvers:
        solvers["gn-true-jacobian"] = TrueJacobianGN(model, c, max_iter=0, polish=100)
    home_random = start_configs(c, None, args.starts, seed=START_SEED + args.seed)
    sets = {"random": np.broadcast_to(home_random, (len(problems),) + home_random.shape),
            "neighbour": np.concatenate([np.broadcast_to(home_random[:1], (len(problems), 1, c.n)),
                                         neighbour_starts(c, problems, args.starts - 1, seed=START_SEED + args.seed)],
                                        axis=1)}
    out["ik"] = {}
    for set_name in args.start_sets:
        for name in args.solvers:
            res = solve_multistart(solvers[name], sets[set_name], problems, until_success=True)
            rec = {"starts": set_name, "solver": name, "success": float(np.mean([r.success for r in res])),
                   "success_by_starts": [float(np.mean([r.success and r.start <= k for r in res]))
                                         for k in range(args.starts)],
                   "solved": [bool(r.success) for r in res],
                   "iterations_mean": float(np.mean([r.iterations for r in res]))}
            out["ik"][f"{name} / {set_name}"] = rec
            print(f"{c.name} seed {args.seed} near_limits {name:<18} {set_name:<9} success {100 * rec['success']:5.1f} %")
    md = diagnose_markdown(out)
    print(md)
    if args.png:
        plot_diagnosis(out, args.png)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    if args.md:
        Path(args.md).write_text(md)
    return 0


def diagnose_markdown(res: dict) -> str:
    lines = [f"`{shlex.join(res['command'])}`", ""] if res.get("command") else []
    lines += ["| joints in the outer 5 % | EE error mm (median) | EE error deg (median) | "
              "network Jacobian relative error, median (p90) |", "|---|---|---|---|"]
    for a in res["accuracy"]:
        lines.append(f"| {a['joints_near_limits']} | {a['ee_pos_mm_median']:.1f} | {a['ee_rot_deg_median']:.2f} | "
                     f"{a['jacobian_rel_err_median']:.3f} ({a['jacobian_rel_err_p90']:.3f}) |")
    lines += ["", "| solver | starts | success | within 1, 2, ... starts | mean iterations (starts run) |",
              "|---|---|---|---|---|"]
    for rec in res["ik"].values():
        lines.append(f"| {rec['solver']} | {rec['starts']} | {100 * rec['success']:.1f} % | "
                     f"{', '.join(f'{100 * x:.0f}' for x in rec['success_by_starts'])} % | {rec['iterations_mean']:.0f} |")
    ik = res["ik"]
    for s in sorted({r["starts"] for r in ik.values()}):
        a, b = ik.get(f"learned-gn / {s}"), ik.get(f"gn-true-jacobian / {s}")
        if a and b:
            miss = [i for i, ok in enumerate(a["solved"]) if not ok]
            fixed = sum(b["solved"][i] for i in miss)
            lines += ["", f"{s} starts: of the {len(miss)} targets learned-gn misses, the same code with the true "
                      f"Jacobian solves {fixed}; it misses {sum(not x for x in b['solved'])} in all."]
    return "\n".join(lines) + "\n"


def _aggregate(args: argparse.Namespace) -> int:
    from dynlearn_ros.learning.ik.aggregate import aggregate, markdown

    try:
        rows = aggregate([json.loads(Path(f).read_text()) for f in args.files])
    except (OSError, json.JSONDecodeError, ValueError, KeyError) as exc:
        raise SystemExit(f"ik aggregate: {exc}") from None
    md = (f"`{shlex.join(args.command_line)}`\n\n" if getattr(args, "command_line", None) else "") + markdown(rows)
    print(md)
    if args.md:
        Path(args.md).write_text(md)
    if args.json:
        Path(args.json).write_text(json.dumps({"command": getattr(args, "command_line", None), "files": args.files,
                                               "rows": rows}, indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    from dynlearn_ros.learning.ik.evaluation import ik_table
    from dynlearn_ros.learning.ik.store import load, save

    model, c, meta = load(args.run)
    metrics = dict(meta.get("metrics", {}))
    if args.targets:
        metrics["ik_random_targets_seed0"] = ik_table(model, c, args.targets, 0, ("random",), ("pose",), log=lambda *_: None)["random"]["pose"]
    for path in args.eval_json:
        rec = json.loads(Path(path).read_text())
        metrics.setdefault("ik_eval", []).append(
            {"command": rec.get("command"), "ik": [r["ik"] for r in rec["runs"]]})
    save(model, c, args.out, command=meta.get("training_command"), history=meta.get("history"), metrics=metrics,
         onnx=args.onnx)
    meta_out = json.loads((Path(args.out) / "metadata.json").read_text())
    meta_out["export_command"] = getattr(args, "command_line", None)
    (Path(args.out) / "metadata.json").write_text(json.dumps(meta_out, indent=2))
    print(f"wrote {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"train": _train, "eval": _eval, "tasks": _tasks, "diagnose": _diagnose,
            "aggregate": _aggregate, "export": _export}[args.ik_verb](args)
