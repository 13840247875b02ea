"""Figures of learning results (matplotlib with the Agg backend, imported on call)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def variance_vs_data(path: str, te, preds: dict, rows: int, joints: Sequence[int], names: Sequence[str],
                     model: str) -> None:
    """PNG at ``path``: for each training-data fraction f (columns) and joint (rows) the measured
    torque of the first ``rows`` rows of the test split ``te`` (N*m over s) with the model's mean
    +- 2 std; ``preds``: {f: (mean (rows, n), std (rows, n))} in N*m."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = te.t[:rows] - te.t[0]
    fr = sorted(preds)
    fig, axes = plt.subplots(len(joints), len(fr), figsize=(2.6 * len(fr), 1.9 * len(joints)), sharex=True,
                             squeeze=False)
    for c, f in enumerate(fr):
        mean, std = preds[f]
        for r, j in enumerate(joints):
            ax = axes[r, c]
            ax.fill_between(t, mean[:, j] - 2 * std[:, j], mean[:, j] + 2 * std[:, j], color="tab:blue", alpha=0.3,
                            lw=0, label="mean +- 2 std")
            ax.plot(t, te.tau[:rows, j], color="k", lw=0.6, label="measured")
            ax.plot(t, mean[:, j], color="tab:blue", lw=0.8, label="mean")
            ax.tick_params(labelsize=6)
            if r == 0:
                ax.set_title(f"{int(round(f * 100))} % of train", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{names[j]}\nN*m", fontsize=7)
            if r == len(joints) - 1:
                ax.set_xlabel("t (s, test)", fontsize=7)
    axes[0, 0].legend(fontsize=5, loc="upper right")
    fig.suptitle(f"{model}: predictive mean +- 2 std on the test trajectory vs training data", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
