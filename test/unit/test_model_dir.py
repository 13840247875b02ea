"""The model-directory contract (docs/models.md): one schema, one validator, golden replay, versions.

Refusals are checked on copies of the shipped models with one thing broken each; the messages
must name the file and the key or tensor at fault.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from test_export_parity import N, _ckpt, _model, _stats

from dynlearn_ros.core.inverse_model import InverseQuery
from dynlearn_ros.learning.export.acrkn import write_model_dir
from dynlearn_ros.paths import models_dir
from dynlearn_ros.runtime import golden
from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor, AcrknInversePredictor
from dynlearn_ros.runtime.errors import GoldenMismatchError, JointMismatchError, MetadataError, ModelLoadError
from dynlearn_ros.runtime.metadata import FORMAT_VERSION, ModelMetadata
from dynlearn_ros.runtime.migrate import migrate_model_dir
from dynlearn_ros.runtime.registry import load_inverse_model
from dynlearn_ros.runtime.validate import open_model_dir

torch.set_num_threads(1)
SHIPPED = ("acrkn_iiwa_sim", "acrkn_panda_inv", "acrkn_pneumatic_fwd", "acrkn_iiwa_fwd", "svdkl_iiwa_sim", "svdkl_panda")
INVERSE = {"acrkn_iiwa_sim": "acrkn", "acrkn_panda_inv": "acrkn", "svdkl_iiwa_sim": "svdkl", "svdkl_panda": "svdkl"}


@pytest.fixture()
def panda(tmp_path):
    """A writable copy of the shipped ac-RKN inverse model."""
    d = tmp_path / "acrkn_panda_inv"
    shutil.copytree(models_dir() / "acrkn_panda_inv", d)
    return d


def _edit_meta(d, fn):
    meta = json.loads((d / "metadata.json").read_text())
    fn(meta)
    (d / "metadata.json").write_text(json.dumps(meta))


def _edit_initializer(d, name, fn):
    proto = onnx.load(str(d / "model.onnx"))
    init = next(i for i in proto.graph.initializer if i.name == name)
    init.CopyFrom(numpy_helper.from_array(fn(numpy_helper.to_array(init).copy()), name))
    onnx.save(proto, str(d / "model.onnx"))


# ----------------------------------------------------------------------------- shipped models
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_validates_and_replays_its_golden_sequence(name):
    d = models_dir() / name
    checked = open_model_dir(d)
    meta = checked.metadata
    assert meta.format_version == FORMAT_VERSION and meta.model_version >= 1
    assert all(w <= 1.0 for w in checked.golden_worst.values()), checked.golden_worst
    assert set(checked.golden_worst) == {t.name for t in meta.outputs}
    assert meta.provenance.command and meta.provenance.data_hash and meta.provenance.created_utc
    if "history" in meta.provenance.details:
        # the migration kept model.onnx byte-identical: the hash it recorded is the file's
        history = meta.provenance.details["history"][0]
        assert history["model_onnx_sha256"] == hashlib.sha256((d / "model.onnx").read_bytes()).hexdigest()
    else:   # written in format 2 directly (acrkn_panda_inv, re-exported after issue 9)
        assert meta.provenance.command.startswith("dynlearn-ros export")
    if name in INVERSE:
        assert meta.role == "inverse" and meta.sigma_bounds is not None
        pred = load_inverse_model(INVERSE[name], d, meta.joint_names)
        assert pred.version == meta.model_version and pred.model_dir == d and pred.metadata == meta
        sn, sf = pred.noise_and_signal_std()
        np.testing.assert_array_equal(sn, meta.sigma_bounds.sigma_n)
        np.testing.assert_array_equal(sf, meta.sigma_bounds.sigma_f)
    else:
        pred = AcrknForwardPredictor.from_directory(d)
        assert pred.version == meta.model_version and meta.sigma_bounds is None


@pytest.mark.parametrize("name", SHIPPED)
def test_schema_round_trip(name, tmp_path):
    meta = ModelMetadata.read(models_dir() / name)
    again = ModelMetadata.from_dict(json.loads(meta.to_json()))
    assert again == meta
    meta.write(tmp_path)
    assert ModelMetadata.read(tmp_path) == meta
    # the same record; the text may differ in layout only (files written before compact_json
    # use one value a line; runtime/metadata.compact_json, test_forward_metadata_compact.py)
    assert json.loads((tmp_path / "metadata.json").read_text()) == \
        json.loads((models_dir() / name / "metadata.json").read_text())


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("missing", ["model.onnx", "metadata.json", "golden.npz"])
def test_missing_file_is_refused(panda, missing):
    (panda / missing).unlink()
    with pytest.raises(ModelLoadError, match=f"missing {missing}"):
        open_model_dir(panda)


def test_truncated_or_corrupt_graph_is_refused(panda):
    data = (panda / "model.onnx").read_bytes()
    (panda / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="model.onnx: not a readable ONNX file"):
        open_model_dir(panda)
    (panda / "model.onnx").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelLoadError, match="model.onnx"):
        load_inverse_model("acrkn", panda, [f"panda_joint{i}" for i in range(1, 8)])


@pytest.mark.parametrize(("path", "pattern"), [
    (("provenance", "data_hash"), r"metadata.json: key 'provenance.data_hash' is missing"),
    (("sigma_bounds", "sigma_f"), r"metadata.json: key 'sigma_bounds.sigma_f' is missing"),
    (("golden", "sha256"), r"metadata.json: key 'golden.sha256' is missing"),
    (("acrkn", "initial_belief"), r"metadata.json: key 'acrkn.initial_belief' is missing"),
    (("joint_names",), r"metadata.json: key 'joint_names' is missing"),
    (("model_version",), r"metadata.json: key 'model_version' is missing"),
])
def test_metadata_missing_a_key_is_refused_naming_file_and_key(panda, path, pattern):
    def drop(meta):
        node = meta
        for k in path[:-1]:
            node = node[k]
        del node[path[-1]]
    _edit_meta(panda, drop)
    with pytest.raises(MetadataError, match=pattern):
        open_model_dir(panda)


def test_wrong_types_and_values_are_refused(panda):
    _edit_meta(panda, lambda m: m["sigma_bounds"].update(sigma_n=m["sigma_bounds"]["sigma_f"]))
    with pytest.raises(MetadataError, match="sigma_bounds.sigma_n' must satisfy 0 <= sigma_n < sigma_f"):
        open_model_dir(panda)
    _edit_meta(panda, lambda m: m.update(model_version="3"))
    with pytest.raises(MetadataError, match="key 'model_version' must be int"):
        open_model_dir(panda)


@pytest.mark.parametrize("version", [1, 3])
def test_unsupported_format_version_is_refused(panda, version):
    _edit_meta(panda, lambda m: m.update(format_version=version))
    with pytest.raises(MetadataError, match=f"format_version' is {version}, this loader reads"):
        open_model_dir(panda)


def test_other_joint_set_is_refused(panda):
    names = [f"panda_joint{i}" for i in range(1, 8)]
    with pytest.raises(JointMismatchError, match="do not match"):
        load_inverse_model("acrkn", panda, [*names[:6], "other_joint"])
    with pytest.raises(JointMismatchError):
        load_inverse_model("acrkn", panda, names[:6])


def test_perturbed_weights_fail_the_golden_replay(panda):
    # 1 % on the encoder's first layer: the belief and torque move far beyond GOLDEN_RTOL
    _edit_initializer(panda, "enc_body.0.W", lambda w: w * np.float32(1.01))
    with pytest.raises(GoldenMismatchError, match="golden output"):
        open_model_dir(panda)


def test_nan_in_an_initializer_is_refused(panda):
    def poison(w):
        w[3, 2] = np.nan
        return w
    _edit_initializer(panda, "dec_act.1.W", poison)
    with pytest.raises(ModelLoadError, match="initializer 'dec_act.1.W' holds 1 non-finite"):
        open_model_dir(panda)


def test_tampered_golden_file_is_refused(panda):
    with np.load(panda / "golden.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["out.tau_mean"][2, 0, 1] *= 1.5
    np.savez(panda / "golden.npz", **arrays)
    with pytest.raises(ModelLoadError, match="sha256"):
        open_model_dir(panda)
    # the same edit with the hash updated: the replay itself refuses it
    sha = hashlib.sha256((panda / "golden.npz").read_bytes()).hexdigest()
    _edit_meta(panda, lambda m: m["golden"].update(sha256=sha))
    with pytest.raises(GoldenMismatchError, match="'tau_mean' step 2 element \\(0, 1\\)"):
        open_model_dir(panda)


def test_wrong_kind_or_role_is_refused():
    with pytest.raises(ModelLoadError, match="kind is 'svdkl', expected 'acrkn'"):
        load_inverse_model("acrkn", models_dir() / "svdkl_panda", [f"panda_joint{i}" for i in range(1, 8)])
    with pytest.raises(ModelLoadError, match="a forward model, expected inverse"):
        AcrknInversePredictor.from_directory(models_dir() / "acrkn_pneumatic_fwd", [f"pam_joint{i}" for i in range(1, 5)])


# ----------------------------------------------------------------------------- joint mapping
def test_permuted_joint_order_is_mapped():
    d = models_dir() / "acrkn_iiwa_sim"
    names = list(ModelMetadata.read(d).joint_names)
    order = [3, 6, 0, 5, 1, 4, 2]
    plain = AcrknInversePredictor.from_directory(d, names)
    perm = AcrknInversePredictor.from_directory(d, [names[i] for i in order])
    meta = plain.metadata
    rng = np.random.default_rng(3)
    om, os_ = np.asarray(meta.normalization["obs_mean"]), np.asarray(meta.normalization["obs_std"])
    q1, q2 = InverseQuery(7), InverseQuery(7)
    m1, s1, m2, s2 = (np.zeros(7) for _ in range(4))
    for _ in range(20):   # a few steps: the belief is carried in both, in model order
        o = om + 0.3 * os_ * rng.standard_normal(14)
        q1.q[:], q1.qd[:] = o[:7], o[7:]
        q1.qd_des[:] = q1.qd
        q1.qd_des_next[:] = q1.qd + 1e-3 * rng.standard_normal(7)
        q1.tau_prev[:] = np.asarray(meta.normalization["act_mean"])
        for f in ("q", "qd", "qd_des", "qd_des_next", "tau_prev"):
            getattr(q2, f)[:] = getattr(q1, f)[order]
        assert plain.predict(q1, m1, s1) and perm.predict(q2, m2, s2)
        # the same float32 numbers reach the same graph: identical after reordering
        np.testing.assert_array_equal(m2, m1[order])
        np.testing.assert_array_equal(s2, s1[order])
    np.testing.assert_array_equal(perm.noise_and_signal_std()[0], plain.noise_and_signal_std()[0][order])


# ----------------------------------------------------------------------------- versions, exports
def _inverse_export(tmp_path, **kw):
    rng = np.random.default_rng(0)
    model = _model("acrkn-inv", "inverse", 2 * N, N)
    stats = _stats(2 * N, N, rng)
    ckpt = _ckpt(model, stats, "inverse")
    std = np.abs(rng.normal(1.0, 0.3, (50, N)))
    return model, ckpt, std, write_model_dir(model, ckpt, tmp_path / "m", test_std=std, **kw)


def test_model_version_increases_on_re_export(tmp_path):
    model, ckpt, std, out = _inverse_export(tmp_path, command="first")
    assert ModelMetadata.read(out).model_version == 1
    write_model_dir(model, ckpt, out, test_std=std, command="second")
    meta = ModelMetadata.read(out)
    assert meta.model_version == 2 and meta.provenance.command == "second"
    write_model_dir(model, ckpt, out, test_std=std, model_version=7)
    assert ModelMetadata.read(out).model_version == 7
    assert AcrknInversePredictor.from_directory(out, ("a", "b", "c")).version == 7
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"]   # no temporary or old directory left


def test_failed_export_leaves_the_old_directory_intact(tmp_path):
    model, ckpt, std, out = _inverse_export(tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = dict(ckpt, joint_names=["a", "b"])   # 2 names for a 3-joint model: the schema refuses it
    with pytest.raises(MetadataError, match="sigma_bounds.sigma_n' has 3 entries, expected 2"):
        write_model_dir(model, bad, out, test_std=std)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"]


def test_failed_validation_before_publish_leaves_the_old_directory_intact(tmp_path, monkeypatch):
    model, ckpt, std, out = _inverse_export(tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # a golden file whose recorded outputs are not what the graph computes (nudged by 1): refused
    real = golden.write_golden

    def nudged(model_dir, inputs, outputs, state=None, reference=None):
        outputs = {k: v + np.float32(1.0) for k, v in outputs.items()}
        return real(model_dir, inputs, outputs, state, reference)
    monkeypatch.setattr("dynlearn_ros.runtime.model_store.write_golden", nudged)
    with pytest.raises(GoldenMismatchError):
        write_model_dir(model, ckpt, out, test_std=std)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"]


# ----------------------------------------------------------------------------- migration, CLI
def _as_format1(d):
    """The format-1 metadata.json a shipped directory was migrated from, rebuilt from the
    format-2 record (every format-1 key has a place there) - only to test migrate_model_dir."""
    m = json.loads((d / "metadata.json").read_text())
    p, spec = m["provenance"], m[m["kind"]]
    norm = {k: v for k, v in m["normalization"].items() if k != "applied_in_graph"}
    if m["kind"] == "acrkn":
        how = " | ".join(x for x in (f"data: {p['details']['data_command']}" if "data_command" in p["details"] else "",
                                     f"trained: {p['details'].get('train_command', '')}", f"exported: {p['command']}") if x)
        old = {"kind": "acrkn", "model": m["model"], "direction": m["role"], "format_version": 1,
               "version": p["package_version"], "joint_names": m["joint_names"], "dt": m["dt"],
               "normalization": norm, "inputs": [{"name": t["name"], "shape": t["shape"]} for t in m["inputs"]],
               "outputs": [{"name": t["name"], "shape": t["shape"]} for t in m["outputs"]], "data": p["data"],
               "data_hash": p["data_hash"], "train_config": p["train_config"], "metrics": m["metrics"],
               "created": p["created_utc"], "how": how, "torch": p["details"]["torch"],
               "python": p["details"]["python"], **{k: v for k, v in spec.items()}}
        if m["sigma_bounds"]:
            old |= {"sigma_n": m["sigma_bounds"]["sigma_n"], "sigma_f": m["sigma_bounds"]["sigma_f"]}
    else:
        with np.load(d / "golden.npz") as z:
            g = {"x": z["in.x"][:, 0].astype(np.float64).tolist(), "mean": z["ref.mean"].tolist(),
                 "var": z["ref.var"].tolist()}
        old = {"kind": "svdkl", "model_type": m["model"], "format_version": 1, "created_utc": p["created_utc"],
               "joint_names": m["joint_names"], "inputs": {}, "outputs": {}, "normalization": m["normalization"],
               "sigma_n": m["sigma_bounds"]["sigma_n"], "sigma_f": m["sigma_bounds"]["sigma_f"], **spec,
               "golden": g, "training": p["train_config"], "training_data_hash": p["data_hash"],
               "metrics": m["metrics"], "export_command": p["command"]}
    (d / "golden.npz").unlink()
    (d / "metadata.json").write_text(json.dumps(old))


@pytest.mark.parametrize("name", ["acrkn_iiwa_sim", "acrkn_pneumatic_fwd", "svdkl_panda"])
def test_migration_reproduces_the_shipped_directory(name, tmp_path):
    d = tmp_path / name
    shutil.copytree(models_dir() / name, d)
    _as_format1(d)
    onnx_before = (d / "model.onnx").read_bytes()
    res = migrate_model_dir(d)
    assert (d / "model.onnx").read_bytes() == onnx_before
    new, shipped = ModelMetadata.read(d), ModelMetadata.read(models_dir() / name)
    hist = res["history"]
    assert hist["model_onnx_sha256"] == hashlib.sha256(onnx_before).hexdigest()
    # identical but for the migration's own record (its date) and what was never format 1
    assert new.to_dict() | {"provenance": None} == shipped.to_dict() | {"provenance": None}
    strip = lambda p: {k: v for k, v in p.details.items() if k != "history"}  # noqa: E731
    assert strip(new.provenance) == strip(shipped.provenance)
    assert (d / "golden.npz").read_bytes() == (models_dir() / name / "golden.npz").read_bytes()
    with pytest.raises(ModelLoadError, match="only format 1 migrates"):
        migrate_model_dir(d)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dynlearn_ros.cli", "model", *args], capture_output=True, text=True,
                          timeout=120)


def test_model_check_command(panda):
    ok = _cli("check", str(models_dir() / "svdkl_panda"), str(panda))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count(": OK ") == 2 and "model_version 1" in ok.stdout and "golden" in ok.stdout
    (panda / "golden.npz").unlink()
    bad = _cli("check", str(panda))
    assert bad.returncode == 1 and "REFUSED" in bad.stdout and "missing golden.npz" in bad.stdout


def test_runtime_modules_do_not_import_the_registry():
    code = ("import sys, dynlearn_ros.runtime.acrkn, dynlearn_ros.runtime.svdkl, dynlearn_ros.runtime.validate;"
            "print('dynlearn_ros.runtime.registry' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_registry_offers_exactly_the_controllers_learned_kinds():
    from dynlearn_ros.core.inverse_model import MODEL_KINDS
    from dynlearn_ros.runtime.registry import ALL_KINDS, LEARNED_KINDS

    assert MODEL_KINDS[0] == "analytic"
    assert set(LEARNED_KINDS) == set(MODEL_KINDS[1:])
    assert ALL_KINDS == MODEL_KINDS
