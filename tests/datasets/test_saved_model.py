import keras
import numpy as np
import pytest
from kedro.io import DatasetError

from imgclf.datasets import SavedModelDataset


def small_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 1))
    flat = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(flat))


@pytest.mark.parametrize("root", ["local", "memory://exports"])
def test_export_round_trip_gives_the_same_probabilities(root, tmp_path):
    filepath = f"{tmp_path if root == 'local' else root}/model/saved_model"
    dataset = SavedModelDataset(filepath=filepath)
    model = small_model()
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 1)).astype("float32")

    dataset.save(model)
    dataset.save(model)  # a second export replaces the first

    assert dataset.exists()
    served = dataset.load()
    np.testing.assert_allclose(np.asarray(served.serve(pixels)), model(pixels), atol=1e-6)


def test_only_models_can_be_exported(tmp_path):
    with pytest.raises(DatasetError, match="saves a Keras model"):
        SavedModelDataset(filepath=str(tmp_path / "x")).save({"weights": [1, 2]})
