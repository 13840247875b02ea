"""Every ``dynlearn-ros ...`` command line shown in README.md and docs/*.md parses with the CLI's
own parser, so the docs cannot drift from the verbs; and the verbs that replaced the old
``python -m dynlearn_ros.<module>`` entry points parse and run."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from dynlearn_ros.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: how a command may start in the docs; all are the same CLI
PREFIXES = (".venv/bin/dynlearn-ros", "dynlearn-ros", ".venv/bin/python -m dynlearn_ros.cli",
            "python -m dynlearn_ros.cli")
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`\n]+)`")


def _commands_in(text: str) -> list[str]:
    """Command lines (continuations joined, comments dropped) in fenced blocks and inline code
    spans. Fenced blocks are taken whole. Inline spans that list alternatives (``a|b``,
    ``{a,b}``) or elide (``...``) are prose and skipped; an inline span without options names a
    verb (``dynlearn-ros report inverse-table``): it gets ``--help``, so the verb must exist."""
    out = []
    for block in FENCE.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            out.append(line.split(" #", 1)[0].strip())
    for span in INLINE.findall(FENCE.sub("", text)):
        if not any(c in span for c in ("|", "...", "{")):
            out.append(span.strip() + ("" if " -" in span else " --help"))
    cmds = []
    for line in out:
        line = line.lstrip("$ ").strip()
        for prefix in PREFIXES:
            if line.startswith(prefix + " "):
                cmds.append(line[len(prefix):].strip())
                break
    return cmds


def _documented() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        found += [(path.name, cmd) for cmd in _commands_in(path.read_text())]
    return found


def test_the_docs_show_commands():
    # a regex that silently matched nothing would make the next test vacuous
    names = {name for name, _ in _documented()}
    assert {"README.md", "results.md", "results_svdkl.md", "datasets.md", "benchmarks.md"} <= names
    assert len(_documented()) >= 80


@pytest.mark.parametrize(("doc", "cmd"), _documented())
def test_documented_command_parses(doc, cmd):
    argv = shlex.split(cmd.replace("$m", "ffnn"))  # one shell loop in results_svdkl.md
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help exits 0 after printing; anything else is a parse error
        assert exc.code == 0, (doc, cmd)
        return
    # as cli.main: only launch takes name:=value arguments after its options
    assert all(":=" in e for e in extra) and (not extra or args.command == "launch"), (doc, cmd, extra)


def test_no_python_m_side_doors_for_learning_data_or_benchmarks():
    """The old entry points are gone from the docs except in the old -> new mapping table."""
    old = re.compile(r"python -m dynlearn_ros\.(learning\.gp\.(cli|novelty|report|bench)|learning\.inverse_table"
                     r"|sim\.bench|datasets\.(registry|analytic))")
    for path in DOCS:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if old.search(line):
                assert line.startswith("| `python -m"), f"{path.name}:{i}: {line}"


@pytest.mark.parametrize("argv", [
    ["data", "list"], ["data", "rbd-baseline", "panda_gaz2019", "panda"],
    ["novelty", "--runs", "r", "--k", "512", "--d0", "0", "1"],
    ["bench", "svdkl", "--json", "b.json", "--n-calls", "10"], ["bench", "plant", "--json", "p.json", "--robots", "iiwa"],
    ["report", "gp-quality", "--data", "a", "b", "--models", "svdkl", "--no-train"],
    ["report", "gp-fractions", "--fractions", "0.5", "1", "--png", "x.png"],
    ["report", "gp-compare", "--data", "a.npz", "--runs", "x=r", "--novelty", "--split-distance", "1.5"],
    ["report", "inverse-table", "--data", "a.npz", "--runs", "x=r", "--no-analytic"],
])
def test_new_verbs_parse(argv):
    args = build_parser().parse_args(argv)
    assert args.command == argv[0]


def test_verbs_refuse_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["report", "gp-compare", "--data", "a.npz"])  # --runs is required
    with pytest.raises(SystemExit):
        build_parser().parse_args(["report", "gp-quality", "--models", "gpr"])  # not a GP kind
    with pytest.raises(SystemExit, match="odd count"):
        main(["data", "rbd-baseline", "panda_gaz2019"])


def test_data_list_names_every_set(capsys):
    """A real run: every catalog entry is listed, loaded or named as missing."""
    from dynlearn_ros.datasets.catalog import list_datasets

    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[0] for line in out) == sorted(list_datasets())


def test_bench_plant_runs(tmp_path):
    """A tiny real run of the plant benchmark (PyBullet + Pinocchio, iiwa): the plant as
    configured matches RNEA far better than PyBullet's defaults (the point of the figures)."""
    out = tmp_path / "p.json"
    assert main(["bench", "plant", "--json", str(out), "--robots", "iiwa", "--steps", "200", "--repeats", "1",
                 "--states", "5"]) == 0
    res = json.loads(out.read_text())
    (r,) = res["robots"]
    assert r["speed"]["plant_step_and_read_per_s"] > 0
    # design notes: with the plant's fixes PyBullet matches Pinocchio to floating-point rounding
    # (~1e-13 rad/s^2 here; 1e-9 leaves room for other BLAS builds); with PyBullet's defaults the
    # URDF damping (0.5 N*m*s/rad at |qd| up to 1 rad/s) acts on wrist links of grams: errors of
    # 1e2-1e3 rad/s^2, so anything above 1 shows the comparison is real
    assert r["match"]["accel_err_max_rad_s2"] < 1e-9
    assert r["match"]["pybullet_defaults_accel_err_max_rad_s2"] > 1.0
    assert np.isfinite(r["match"]["gravity_hold_drift_10s_rad"])
    assert res["command_line"].startswith("dynlearn-ros bench plant")
