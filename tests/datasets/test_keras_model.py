import keras
import numpy as np
import pytest
from kedro.io import DatasetError

from imgclf.datasets import KerasModelDataset


def small_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 1))
    flat = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(flat))


PIXELS = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 1)).astype("float32")


@pytest.mark.parametrize("root", ["local", "memory://models"])
def test_a_saved_model_loads_back_with_the_same_outputs(root, tmp_path):
    filepath = f"{tmp_path if root == 'local' else root}/cnn/model.keras"
    dataset = KerasModelDataset(filepath=filepath)
    model = small_model()
    dataset.save(model)
    dataset.save(model)  # saving again replaces it
    assert dataset.exists()
    np.testing.assert_allclose(dataset.load().predict(PIXELS, verbose=0), model(PIXELS), atol=1e-6)
    if root == "local":
        assert [path.name for path in (tmp_path / "cnn").iterdir()] == ["model.keras"]


def test_a_save_that_fails_midway_keeps_the_previous_model(tmp_path, monkeypatch):
    dataset = KerasModelDataset(filepath=str(tmp_path / "model.keras"))
    model = small_model()
    dataset.save(model)
    before = (tmp_path / "model.keras").read_bytes()

    def full_disk(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as file:
            file.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device", filepath)

    monkeypatch.setattr(keras.Model, "save", full_disk)
    with pytest.raises(DatasetError, match=r"No space left on device: '.*/model\.keras'"):
        dataset.save(model)
    assert (tmp_path / "model.keras").read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == ["model.keras"]


def test_models_load_from_a_partitioned_folder(tmp_path):
    """As the catalog's trained_models: one model per <family>/<variant> folder."""
    from kedro_datasets.partitions import PartitionedDataset

    for variant in ("scratch_cnn/deep", "transfer/adam"):
        KerasModelDataset(filepath=str(tmp_path / variant / "model.keras")).save(small_model())
    models = PartitionedDataset(
        path=str(tmp_path), dataset="imgclf.datasets.KerasModelDataset",
        filename_suffix="/model.keras",
    ).load()  # fmt: skip
    assert sorted(models) == ["scratch_cnn/deep", "transfer/adam"]
    assert models["transfer/adam"]().predict(PIXELS, verbose=0).shape == (2, 3)


def test_only_models_are_saved(tmp_path):
    with pytest.raises(DatasetError, match="saves a Keras model"):
        KerasModelDataset(filepath=str(tmp_path / "model.keras")).save({"weights": [1]})
