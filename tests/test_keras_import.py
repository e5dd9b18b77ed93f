"""Import of the published pi-DOC Keras models: reference outputs, parameter counts, bad files, CLI."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from gcml.errors import FormatError, InputError
from gcml.models.keras_import import import_keras, read_keras_architecture, read_keras_weights
from gcml.models.pidoc import count_keras_parameters
from gcml.models.trained import TrainedModel

WEIGHTS = {"cnn": "pidoc_cnn_published_weights.h5", "ced": "pidoc_ced_random_weights.h5"}


def _files(shared_data, kind):
    d = shared_data / "pidoc"
    return d / f"pidoc_{kind}_architecture.json", d / WEIGHTS[kind], d / f"pidoc_{kind}_reference_io.npz"


def _ced_keras_count() -> int:
    """Keras count_params of the published CED, from its layer list (3x3 convs; BN: 4 values per channel)."""
    convs = [(1, 32), (32, 32), (64, 64), (64, 64), (128, 128), (128, 128), (256, 128), (128, 128),
             (256, 128), (256, 128), (384, 128), (256, 64), (192, 64), (128, 32), (96, 32), (64, 1)]
    return sum(9 * ci * co + co for ci, co in convs) + sum(4 * co for _, co in convs[:-1])


# Keras count_params of the published CNN, by hand: convs 1616 + 51232 + 51264 + 204928, dense 204864 + 2080
# + 528 + 34, BatchNorm 4 x (16 + 32 + 64 + 128 + 64 + 32 + 16).
CNN_KERAS_PARAMS = 1616 + 51232 + 51264 + 204928 + 204864 + 2080 + 528 + 34 + 4 * (16 + 32 + 64 + 128 + 64 + 32 + 16)


@pytest.mark.parametrize("kind", ["cnn", "ced"])
def test_imported_model_reproduces_tensorflow(shared_data, tmp_path, kind):
    arch, weights, ref = _files(shared_data, kind)
    out = tmp_path / f"{kind}.pt"
    res = import_keras(arch, weights, out)
    assert res.path == out and out.is_file()
    # the bundle opens without unpickling code
    raw = torch.load(out, map_location="cpu", weights_only=True)
    assert raw["architecture"] == f"pidoc-{kind}"
    z = np.load(ref)
    x = np.moveaxis(z["x_nhwc"], -1, 1)  # NHWC -> NCHW
    y_ref = z["y"] if kind == "cnn" else np.moveaxis(z["y"], -1, 1)
    pred = TrainedModel.load(out).predict(x, standardized=True, batch_size=2)
    assert pred["raw"].shape == y_ref.shape
    np.testing.assert_allclose(pred["raw"], y_ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", ["cnn", "ced"])
def test_parameter_counts_equal_keras(shared_data, kind):
    arch_path, weights_path, _ = _files(shared_data, kind)
    expected = CNN_KERAS_PARAMS if kind == "cnn" else _ced_keras_count()
    arch = read_keras_architecture(arch_path)
    weights = read_keras_weights(weights_path)
    lm = TrainedModel.load(import_keras(arch_path, weights_path).bundle)
    assert arch.n_params == expected
    assert sum(a.size for arrs in weights.values() for _, a in arrs) == expected
    assert count_keras_parameters(lm.network) == expected
    if kind == "cnn":
        assert expected == 517_954


def test_physical_units_and_output_order(shared_data):
    """Predictions in kpc and Gyr; column 0 is the distance (10-100 kpc), column 1 the age (< 14 Gyr)."""
    arch, weights, ref = _files(shared_data, "cnn")
    consts = json.loads((shared_data / "pidoc" / "standardization_constants.json").read_text())
    z = np.load(ref)
    x_std = np.moveaxis(z["x_nhwc"], -1, 1).astype(np.float64)
    flux = 10.0 ** (x_std * consts["stdluminosityVtrain"] + consts["meanluminosityVtrain"])
    res = import_keras(arch, weights)
    pred = TrainedModel.load(res.bundle).predict(flux)  # physical flux in, physical outputs out
    np.testing.assert_allclose(pred["raw"], z["y"], atol=1e-4)
    m, s = consts["mean_distance_age_train"], consts["std_distance_age_train"]
    np.testing.assert_allclose(pred["distance"], z["y"][:, 0] * s + m, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(pred["age"], z["y"][:, 1] * s + m, rtol=1e-5, atol=1e-3)
    assert np.all((pred["age"] > 0) & (pred["age"] < 15))
    assert pred["distance"].max() > 30
    assert res.bundle["targets"]["units"] == ["kpc", "Gyr"]


def test_ced_mass_map_in_msun(shared_data):
    arch, weights, ref = _files(shared_data, "ced")
    consts = json.loads((shared_data / "pidoc" / "standardization_constants.json").read_text())
    z = np.load(ref)
    pred = TrainedModel.load(import_keras(arch, weights).bundle).predict(z["x_nhwc"][..., 0], standardized=True)
    log_m = z["y"][..., 0] * consts["stdmasstrain"] + consts["meanmasstrain"]
    np.testing.assert_allclose(pred["log10_mass"], log_m, atol=1e-4)
    np.testing.assert_allclose(pred["mass"], 10.0 ** log_m, rtol=1e-3)
    np.testing.assert_allclose(pred["mass_total"], (10.0 ** log_m).sum(axis=(1, 2)), rtol=1e-3)


def test_not_a_keras_json(shared_data, tmp_path):
    _, weights, _ = _files(shared_data, "cnn")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2, 3]")
    with pytest.raises(FormatError, match="not a Keras model JSON"):
        import_keras(bad, weights)
    bad.write_text("this is not json")
    with pytest.raises(FormatError, match="cannot parse JSON"):
        import_keras(bad, weights)
    with pytest.raises(InputError, match="not found"):
        import_keras(tmp_path / "absent.json", weights)


def test_weights_of_another_architecture(shared_data):
    arch, _, _ = _files(shared_data, "ced")
    _, cnn_weights, _ = _files(shared_data, "cnn")
    with pytest.raises(FormatError, match="15 layers with weights but .* has 31; missing layer"):
        import_keras(arch, cnn_weights)


def test_missing_layer_in_weights(shared_data, tmp_path):
    arch, weights, _ = _files(shared_data, "cnn")
    w2 = tmp_path / "w.h5"
    shutil.copy(weights, w2)
    with h5py.File(w2, "r+") as f:
        names = [n for n in f.attrs["layer_names"] if n != b"Conv-3"]
        f.attrs["layer_names"] = np.array(names)
        del f["Conv-3"]
    with pytest.raises(FormatError, match="missing layer\\(s\\) Conv-3"):
        import_keras(arch, w2)


def test_weight_shape_mismatch(shared_data, tmp_path):
    arch, weights, _ = _files(shared_data, "cnn")
    doc = json.loads(arch.read_text())
    for lay in doc["config"]["layers"]:
        if lay["config"]["name"] == "Conv-2":
            lay["config"]["filters"] = 24
    a2 = tmp_path / "a.json"
    a2.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="layer 'Conv-2' weight .*kernel:0' has shape \\(10, 10, 16, 32\\), "
                                          "the architecture expects \\(10, 10, 16, 24\\)"):
        import_keras(a2, weights)


def test_not_hdf5_weights(shared_data, tmp_path):
    arch, _, _ = _files(shared_data, "cnn")
    bad = tmp_path / "w.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(FormatError, match="not an HDF5 file"):
        import_keras(arch, bad)
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_dataset("x", data=[1])
    with pytest.raises(FormatError, match="no 'layer_names'"):
        import_keras(arch, tmp_path / "empty.h5")


def test_unsupported_layer_and_wrong_graph(shared_data, tmp_path):
    arch, weights, _ = _files(shared_data, "ced")
    doc = json.loads(arch.read_text())
    doc["config"]["layers"][5]["class_name"] = "GaussianNoise"
    a2 = tmp_path / "a.json"
    a2.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="is a GaussianNoise, which gcml cannot import"):
        import_keras(a2, weights)
    # rewire a skip connection: concatenate_5 reads spatial_dropout2d_5 instead of spatial_dropout2d_7
    doc = json.loads(arch.read_text())
    for lay in doc["config"]["layers"]:
        if lay["config"]["name"] == "concatenate_5":
            lay["inbound_nodes"][0][1][0] = "spatial_dropout2d_8"
    a2.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="'concatenate_5' .* expects a Concatenate reading"):
        import_keras(a2, weights)


def test_kind_must_match(shared_data):
    arch, weights, _ = _files(shared_data, "cnn")
    with pytest.raises(FormatError, match="`kind` ced was given but the file describes a pi-DOC CNN"):
        import_keras(arch, weights, kind="ced")
    with pytest.raises(InputError, match="`kind`: expected 'cnn' or 'ced'"):
        import_keras(arch, weights, kind="vgg")


def test_standardization_file(shared_data, tmp_path):
    arch, weights, _ = _files(shared_data, "cnn")
    doc = json.loads((shared_data / "pidoc" / "standardization_constants.json").read_text())
    doc["std_distance_age_train"] = 2.0
    std = tmp_path / "std.json"
    std.write_text(json.dumps(doc))
    b = import_keras(arch, weights, standardization=std).bundle
    assert b["task"] == "scalar-regression" and b["targets"]["norm"]["scale"] == [2.0, 2.0]
    del doc["meanmasstrain"]
    std.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="missing standardisation constant\\(s\\) meanmasstrain"):
        import_keras(arch, weights, standardization=std)


def test_cli_import_keras(shared_data, tmp_path, cli, monkeypatch):
    arch, weights, _ = _files(shared_data, "cnn")
    monkeypatch.chdir(tmp_path)
    r = cli("models", "import-keras", arch, weights)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "pidoc_cnn.pt").is_file()
    assert "517,954 parameters" in r.output and "distance (kpc), age (Gyr)" in r.output
    r = cli("models", "import-keras", arch, weights)
    assert r.exit_code == 2 and "already exists; pass --overwrite" in r.output
    r = cli("models", "import-keras", arch, weights, "--overwrite", "-o", "again.pt", "--kind", "cnn")
    assert r.exit_code == 0 and (tmp_path / "again.pt").is_file()
    ced_arch, _, _ = _files(shared_data, "ced")
    r = cli("models", "import-keras", ced_arch, weights, "-o", "x.pt")
    assert r.exit_code == 2 and "missing layer" in r.output
    assert not (tmp_path / "x.pt").exists()


def test_flux_definition_shifts_input_by_log10_4pi(shared_data):
    """With the authors' F = L/d^2 the bundle reads gcml's F = L/(4 pi d^2) = F_a / (4 pi): same network input."""
    arch, weights, ref = _files(shared_data, "cnn")
    consts = json.loads((shared_data / "pidoc" / "standardization_constants.json").read_text())
    z = np.load(ref)
    x_std = np.moveaxis(z["x_nhwc"], -1, 1).astype(np.float64)
    f_authors = 10.0 ** (x_std * consts["stdluminosityVtrain"] + consts["meanluminosityVtrain"])
    b = import_keras(arch, weights, flux_definition="d2").bundle
    assert "L_V / d^2" in b["inputs"]["flux_definition"]
    pred = TrainedModel.load(b).predict(f_authors / (4 * np.pi))
    np.testing.assert_allclose(pred["raw"], z["y"], atol=1e-4)
    with pytest.raises(InputError, match="`flux_definition`"):
        import_keras(arch, weights, flux_definition="sr")


def test_full_model_hdf5_file(shared_data, tmp_path):
    """model.save("x.h5") files keep the same layout under /model_weights."""
    arch, weights, ref = _files(shared_data, "cnn")
    full = tmp_path / "full.h5"
    with h5py.File(weights, "r") as src, h5py.File(full, "w") as dst:
        g = dst.create_group("model_weights")
        for k, v in src.attrs.items():
            g.attrs[k] = v
        for name in src:
            src.copy(src[name], g, name=name)
        dst.attrs["model_config"] = arch.read_text()
    z = np.load(ref)
    pred = TrainedModel.load(import_keras(arch, full).bundle).predict(np.moveaxis(z["x_nhwc"], -1, 1), standardized=True)
    np.testing.assert_allclose(pred["raw"], z["y"], atol=1e-4)
