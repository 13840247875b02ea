"""Model directories are replaced whole or not at all."""

import pytest

from dynlearn_ros.runtime.model_store import publish_model_dir


def write(text):
    def fill(tmp):
        (tmp / "model.onnx").write_text(text)
        (tmp / "metadata.json").write_text("{}")
    return fill


def test_publish_creates_and_replaces(tmp_path):
    out = tmp_path / "models" / "m"
    publish_model_dir(out, write("v1"))
    assert (out / "model.onnx").read_text() == "v1"
    publish_model_dir(out, write("v2"))
    assert (out / "model.onnx").read_text() == "v2"
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"]  # no temp or old dirs left


def test_failed_write_leaves_the_old_model_untouched(tmp_path):
    out = tmp_path / "m"
    publish_model_dir(out, write("v1"))

    def broken(tmp):
        (tmp / "model.onnx").write_text("half")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError, match="export failed"):
        publish_model_dir(out, broken)
    assert (out / "model.onnx").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
