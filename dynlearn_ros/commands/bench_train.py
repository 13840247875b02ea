"""``dynlearn-ros bench train --json PATH``: training seconds per epoch over ``--samples`` rows
(default 100k) of synthetic 7-joint pendulum data, for the ac-RKN inverse and forward models and
the LSTM / FFNN baselines (same windows, same batch size), at 1 and 2 torch threads.

Windows do not overlap (stride = window), so one epoch processes every sample exactly once.
Goal from the issue: <= 30 s per epoch on 2 cores. The machine is shared: ratios to the LSTM
measured in the same run are the comparable figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", required=True, help="output JSON path")
    parser.add_argument("--samples", type=int, default=100_000, help="rows per epoch")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    parser.add_argument("--models", nargs="+", default=["acrkn-inv", "acrkn-fwd", "lstm", "ffnn"])
    parser.add_argument("--batch-size", type=int, default=32)


def run(args: argparse.Namespace) -> int:
    import torch

    from dynlearn_ros.learning.data import Stats, arrays
    from dynlearn_ros.learning.models import build_model
    from dynlearn_ros.learning.synthetic import pendulum_data
    from dynlearn_ros.learning.train import (
        TrainConfig,
        WindowSet,
        batch_loss,
        model_config,
        set_delta_buffers,
    )

    T = 1000
    data = pendulum_data(n_ep=max(1, args.samples // T), T=T, n=7, dt=1e-3)
    out: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "torch": torch.__version__,
                 "python": platform.python_version(), "samples": len(data), "batch_size": args.batch_size,
                 "goal": "<= 30 s per epoch over 100k samples on 2 cores", "results": {}}
    for kind in args.models:
        direction = "forward" if kind == "acrkn-fwd" else "inverse"
        window = 40 if direction == "forward" else 50
        tcfg = TrainConfig(kind=kind, direction=direction, window=window, stride=window, batch_size=args.batch_size)
        obs, act = arrays(data, direction)
        stats = Stats.fit(obs, act, data.episode)
        ws = WindowSet(data, stats, tcfg)
        for threads in args.threads:
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            model = build_model(model_config(tcfg, obs.shape[1], act.shape[1]))
            set_delta_buffers(model, stats)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            gen = torch.Generator().manual_seed(0)
            perm = torch.randperm(len(ws), generator=gen)
            t0 = time.perf_counter()
            for b in range(0, len(ws), tcfg.batch_size):
                loss, _ = batch_loss(model, ws, perm[b:b + tcfg.batch_size], tcfg, gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
            dt = time.perf_counter() - t0
            out["results"][f"{kind}/threads={threads}"] = {"epoch_s": dt, "rows": ws.rows,
                                                           "s_per_100k": dt * 100_000 / ws.rows}
            print(f"{kind:10s} threads={threads}: {dt:7.1f} s per epoch of {ws.rows} rows")
    for key, v in out["results"].items():
        base = out["results"].get("lstm/threads=" + key.split("=")[1])
        if base:
            v["ratio_to_lstm"] = v["epoch_s"] / base["epoch_s"]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"-> {args.json}")
    return 0
