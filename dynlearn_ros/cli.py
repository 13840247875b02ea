"""``dynlearn-ros``: the package's command line.

Each sub-command lives in ``dynlearn_ros/commands/<name>.py`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when their
command runs, so ``dynlearn-ros launch`` never pays for torch.

Errors on user input (a bad file, a bad value, a directory that cannot be written) end the
command with one line on stderr naming the file and the problem and exit code 2; ``--debug``
(before the command) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command -> (module under dynlearn_ros.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "launch": ("launch", "start a launch graph without launch_ros (each node its own process)"),
    "collect": ("collect", "simulate exciting trajectories and write a data set (.npz)"),
    "train": ("train", "train a dynamics model on a data set"),
    "eval": ("eval", "evaluate trained models and write JSON + a markdown table"),
    "export": ("export", "export a trained model to an ONNX model directory"),
    "novelty": ("novelty", "calibrate the novelty term of a trained SVDKL/SVGP run's variance"),
    "data": ("data", "list the data sets; the rigid-body baseline on them"),
    "bench": ("bench", "benchmarks writing JSON (loop, model, train, svdkl, plant)"),
    "bag": ("bag", "rosbag2 files as training data: info, to-npz, train (docs/bags.md)"),
    "model": ("model", "check or migrate model directories (docs/models.md)"),
    "ik": ("ik", "learned inverse kinematics: train, eval, tasks, export (docs/ik.md)"),
    "faults": ("faults", "run the fault-injection matrix (docs/safety.md) and print its table"),
    "report": ("report", "reproduce a documented results table, figure or scenario"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only`` (a command name) every command is listed but only
    that one's module is imported and its options added - what a run needs."""
    parser = argparse.ArgumentParser(prog="dynlearn-ros", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if only is not None and name != only:
            continue
        try:
            mod = importlib.import_module(f"dynlearn_ros.commands.{module}")
        except ImportError as exc:  # a command whose dependencies are missing still lists
            p.set_defaults(_import_error=exc)
            continue
        mod.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(words[0] if words and words[0] in COMMANDS else None)
    args, extra = parser.parse_known_args(argv)
    # name:=value launch arguments may follow options (argparse stops positionals at the first)
    if extra and hasattr(args, "launch_args") and all(":=" in e and not e.startswith("-") for e in extra):
        args.launch_args = [*args.launch_args, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # the command line as given, for provenance (metadata of data sets and models)
    args.command_line = ["dynlearn-ros", *(sys.argv[1:] if argv is None else argv)]
    if getattr(args, "_import_error", None) is not None:
        parser.error(f"command '{args.command}' is unavailable: {args._import_error}")
    from dynlearn_ros.dds_profile import apply

    apply()   # before any participant of this process or of the nodes it starts
    mod = importlib.import_module(f"dynlearn_ros.commands.{args._module}")
    if args.debug:
        return int(mod.run(args) or 0)
    try:
        return int(mod.run(args) or 0)
    except USER_ERRORS as exc:
        print(f"dynlearn-ros {args.command}: error: {user_error_line(exc)}", file=sys.stderr)
        return 2


#: exceptions that come from the user's input: files (missing, truncated, unwritable), values
#: (ValueError is what the package raises for a bad argument or file content)
USER_ERRORS = (OSError, ValueError, EOFError)


def user_error_line(exc: BaseException) -> str:
    """One line for ``exc``: the file and the problem, with a hint to --debug."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return f"{text} (--debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
