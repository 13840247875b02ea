"""``dynlearn-ros report <target>``: reproduce a documented results table, figure or scenario.

Targets (each its own options; ``dynlearn-ros report <target> --help``):
  vgain          closed-loop comparison of fixed and variance-scheduled gains (docs/results_closed_loop.md)
  vgain-inproc   the same scenario's plant and control law in one process, no ROS (a quick screen)
  gp-quality     GP inverse-dynamics quality and calibration per data set (docs/results_svdkl.md)
  gp-fractions   GP predictive std vs the fraction of training data, with a PNG (docs/results_svdkl.md)
  gp-compare     trained GP runs side by side, per episode kind / distance, with novelty (docs/results_svdkl.md)
  inverse-table  every inverse model family on the same test rows (docs/results.md)
  online         payload schedule: fixed gains, fixed learned model, online learning (docs/results_closed_loop.md)
  predictor      forward prediction error on held-out simulated runs (docs/predictor.md)
  aggregate      mean +- spread over seeds of eval / inverse-table JSONs (docs/results.md)
  arx-headroom   how much of the ARX h-step error any model could remove (docs/results.md)
"""

from __future__ import annotations

import argparse
import importlib

TARGETS = {
    "vgain": ("report_vgain", "closed-loop comparison of fixed and variance-scheduled gains"),
    "vgain-inproc": ("report_vgain_inproc", "the vgain scenario in one process, no ROS (a quick screen)"),
    "gp-quality": ("report_gp", "GP inverse-dynamics quality and calibration per data set"),
    "gp-fractions": ("report_gp", "GP predictive std vs the fraction of training data (PNG)"),
    "gp-compare": ("report_gp", "trained GP runs side by side on the validation and test splits"),
    "inverse-table": ("report_inverse_table", "every inverse model family on the same test rows"),
    "online": ("report_online", "payload schedule: fixed gains, fixed learned model, online learning (PNG)"),
    "predictor": ("report_predictor", "forward prediction error on held-out simulated runs (docs/predictor.md)"),
    "aggregate": ("report_aggregate", "mean +- spread over seeds of eval / inverse-table JSONs"),
    "arx-headroom": ("report_arx_headroom", "how much of the ARX h-step error any model could remove"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (module, help_text) in TARGETS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_report_module=module)
        mod = importlib.import_module(f"dynlearn_ros.commands.{module}")
        if module == "report_gp":
            mod.add_arguments(p, name)
        else:
            mod.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(f"dynlearn_ros.commands.{args._report_module}").run(args) or 0)
