"""Training speed (``dynlearn-ros bench train --json PATH``): seconds per epoch over ``--samples`` rows
(default 100k) of synthetic 7-joint pendulum data, for the ac-RKN inverse and forward models and
the LSTM / FFNN baselines (same windows, same batch size), at 1 and 2 torch threads.

Windows do not overlap (stride = window), so one epoch processes every sample exactly once.
Goal from the issue: <= 30 s per epoch on 2 cores. The machine is shared: ratios to the LSTM
measured in the same run are the comparable figures.
"""

from __future__ import annotations

import platform
import time
from datetime import UTC, datetime


def bench_training(samples: int = 100_000, threads: tuple[int, ...] = (1, 2),
                   models: tuple[str, ...] = ("acrkn-inv", "acrkn-fwd", "lstm", "ffnn"), batch_size: int = 32) -> dict:
    """Seconds per training epoch (one pass over ``samples`` rows of non-overlapping windows) of
    each model kind in ``models`` at each torch thread count in ``threads``; ``ratio_to_lstm``
    against the LSTM at the same thread count. Returns the result dict."""
    import torch

    from dynlearn_ros.datasets.normalize import Stats
    from dynlearn_ros.datasets.windows import model_arrays
    from dynlearn_ros.learning.models.sequence import build_model
    from dynlearn_ros.learning.synthetic import pendulum_data
    from dynlearn_ros.learning.training.sequence import (
        TrainConfig,
        WindowSet,
        batch_loss,
        model_config,
        set_delta_buffers,
    )

    T = 1000
    data = pendulum_data(n_ep=max(1, samples // T), T=T, n=7, dt=1e-3)
    out: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "torch": torch.__version__,
                 "python": platform.python_version(), "samples": len(data), "batch_size": batch_size,
                 "goal": "<= 30 s per epoch over 100k samples on 2 cores", "results": {}}
    for kind in models:
        direction = "forward" if kind == "acrkn-fwd" else "inverse"
        window = 40 if direction == "forward" else 50
        tcfg = TrainConfig(kind=kind, direction=direction, window=window, stride=window, batch_size=batch_size)
        obs, act = model_arrays(data, direction)
        stats = Stats.fit(obs, act, data.episode)
        ws = WindowSet(data, stats, tcfg)
        for nthreads in threads:
            torch.set_num_threads(nthreads)
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
            out["results"][f"{kind}/threads={nthreads}"] = {"epoch_s": dt, "rows": ws.rows,
                                                           "s_per_100k": dt * 100_000 / ws.rows}
            print(f"{kind:10s} threads={nthreads}: {dt:7.1f} s per epoch of {ws.rows} rows")
    for key, v in out["results"].items():
        base = out["results"].get("lstm/threads=" + key.split("=")[1])
        if base:
            v["ratio_to_lstm"] = v["epoch_s"] / base["epoch_s"]
    return out
