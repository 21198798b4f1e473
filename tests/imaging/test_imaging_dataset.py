"""Tests for imgclf.imaging.dataset.make_dataset."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from imgclf.imaging.dataset import labels_to_ids, make_dataset

CLASSES = ["cat", "dog", "eel"]
IMAGE_COUNT = 10
SIZE = 8
AUGMENTATION = {"rotation": 0.1, "zoom": 0.2, "horizontal_flip": True, "brightness": [0.8, 1.2]}


def grey_level(position: int) -> int:
    """The flat grey level of image ``position`` in the test index."""
    return 10 + 20 * position


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Ten images of mixed sizes and formats; image ``i`` is flat grey ``grey_level(i)``
    with a white top-left quarter (so that flips and rotations change it)."""
    folder = tmp_path_factory.mktemp("images")
    rows = []
    for position in range(IMAGE_COUNT):
        width, height = SIZE * (1 + position % 3), SIZE * (1 + position % 2)
        image = Image.new("RGB", (width, height), (grey_level(position),) * 3)
        image.paste((255, 255, 255), (0, 0, width // 2, height // 2))
        path = folder / f"image_{position}.{'png' if position % 2 else 'bmp'}"
        image.save(path)
        rows.append({"path": str(path), "label": CLASSES[position % 3]})
    return pd.DataFrame(rows)


def collect(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """One full pass over ``dataset``, concatenated."""
    images, labels = zip(*[(batch.numpy(), ids.numpy()) for batch, ids in dataset], strict=True)
    return np.concatenate(images), np.concatenate(labels)


def image_positions(images: np.ndarray) -> list[int]:
    """Recover each image's index position from its median grey level (strong augmentation
    can shift a median by a step: positions are kept within the index)."""
    medians = np.median(images.reshape(len(images), -1), axis=1)
    return [min(max(round((median - 10) / 20), 0), len(images) - 1) for median in medians]


def test_evaluation_batches_shapes_dtypes_and_order(index: pd.DataFrame) -> None:
    dataset = make_dataset(index, CLASSES, image_size=SIZE, batch_size=4)
    batches = list(dataset)
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    assert dataset.element_spec[0].shape.as_list() == [None, SIZE, SIZE, 3]
    images, labels = collect(dataset)
    assert images.dtype == np.float32
    assert labels.dtype == np.int32
    assert images.min() >= 0.0 and images.max() <= 255.0
    np.testing.assert_array_equal(labels, [position % 3 for position in range(IMAGE_COUNT)])
    assert image_positions(images) == list(range(IMAGE_COUNT))
    np.testing.assert_array_equal(images[:, 0, 0], 255.0)


def test_grayscale_and_rectangular_size(index: pd.DataFrame) -> None:
    dataset = make_dataset(index, CLASSES, image_size=(6, 4), color_mode="grayscale")
    images, _ = collect(dataset)
    assert images.shape == (IMAGE_COUNT, 6, 4, 1)


def test_evaluation_never_augments(index: pd.DataFrame) -> None:
    plain, _ = collect(make_dataset(index, CLASSES, image_size=SIZE))
    with_augmentation = make_dataset(index, CLASSES, image_size=SIZE, augmentation=AUGMENTATION)
    np.testing.assert_array_equal(collect(with_augmentation)[0], plain)


@pytest.mark.parametrize("cache", [True, False, "file"])
def test_training_shuffles_every_epoch_without_changing_pixels(
    index: pd.DataFrame, tmp_path: Path, cache: bool | str
) -> None:
    cache_setting = str(tmp_path / "cache" / "images") if cache == "file" else cache
    dataset = make_dataset(
        index, CLASSES, image_size=SIZE, batch_size=3, training=True, cache=cache_setting,
        epochs=2,
    )  # fmt: skip
    assert dataset.cardinality().numpy() == 2 * 4  # 10 images in batches of 3, twice
    images, labels = collect(dataset)
    first_images, second_images = images[:IMAGE_COUNT], images[IMAGE_COUNT:]
    first_labels = labels[:IMAGE_COUNT]
    first_order = image_positions(first_images)
    assert sorted(first_order) == list(range(IMAGE_COUNT))
    assert first_order != list(range(IMAGE_COUNT))
    assert image_positions(second_images) != first_order
    np.testing.assert_array_equal(first_labels, [position % 3 for position in first_order])
    np.testing.assert_array_equal(first_images[:, 0, 0], 255.0)


def test_training_augmentation_changes_pixels(index: pd.DataFrame) -> None:
    plain, _ = collect(make_dataset(index, CLASSES, image_size=SIZE))
    augmented = make_dataset(
        index, CLASSES, image_size=SIZE, training=True, augmentation=AUGMENTATION
    )
    images, _ = collect(augmented)
    assert images.shape == plain.shape
    assert images.min() >= 0.0 and images.max() <= 255.0
    by_position = plain[image_positions(images)]
    assert not np.allclose(images, by_position)


def test_same_seed_is_reproducible_and_epochs_differ(index: pd.DataFrame) -> None:
    def two_epochs(seed: int) -> list[np.ndarray]:
        dataset = make_dataset(
            index, CLASSES, image_size=SIZE, batch_size=4, training=True,
            augmentation=AUGMENTATION, seed=seed, epochs=2,
        )  # fmt: skip
        images, labels = collect(dataset)
        return [images[:IMAGE_COUNT], labels[:IMAGE_COUNT], images[IMAGE_COUNT:]]

    first = two_epochs(seed=1)
    again = two_epochs(seed=1)
    other = two_epochs(seed=2)
    for expected, actual in zip(first, again, strict=True):
        np.testing.assert_array_equal(actual, expected)
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[0], first[2])


def test_same_seed_is_reproducible_in_fresh_processes(index: pd.DataFrame, tmp_path: Path) -> None:
    index_path = tmp_path / "index.csv"
    index.to_csv(index_path, index=False)
    script = textwrap.dedent(
        f"""
        import hashlib, pandas as pd
        from imgclf.imaging.dataset import make_dataset
        dataset = make_dataset(
            pd.read_csv({str(index_path)!r}), {CLASSES!r}, image_size={SIZE}, batch_size=4,
            training=True, augmentation={AUGMENTATION!r}, seed=5, epochs=2,
        )
        digest = hashlib.sha256()
        for images, labels in dataset:
            digest.update(images.numpy().tobytes() + labels.numpy().tobytes())
        print(digest.hexdigest())
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    digests = [process.communicate(timeout=120)[0].strip() for process in processes]
    assert all(process.returncode == 0 for process in processes)
    assert digests[0] == digests[1]
    assert len(digests[0]) == len(hashlib.sha256().hexdigest())


@pytest.mark.parametrize("cache", [True, False])
def test_a_stream_that_starts_at_a_later_epoch_repeats_that_epoch(
    index: pd.DataFrame, cache: bool
) -> None:
    """What a resumed fit relies on: epoch k's order and augmentation do not depend on
    the epochs before it."""

    def epochs(first: int) -> np.ndarray:
        dataset = make_dataset(
            index, CLASSES, image_size=SIZE, batch_size=4, training=True, cache=cache,
            augmentation=AUGMENTATION, seed=3, first_epoch=first, epochs=3,
        )  # fmt: skip
        return collect(dataset)[0]

    whole, from_second, from_third = epochs(0), epochs(1), epochs(2)
    assert len(from_third) == IMAGE_COUNT
    np.testing.assert_array_equal(from_second, whole[IMAGE_COUNT:])
    np.testing.assert_array_equal(from_third, whole[2 * IMAGE_COUNT :])
    assert not np.array_equal(whole[:IMAGE_COUNT], whole[IMAGE_COUNT : 2 * IMAGE_COUNT])


def test_the_cache_decodes_each_image_once_for_all_epochs(
    index: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imgclf.imaging.dataset as dataset_module

    reads: list[str] = []
    read_image = dataset_module.read_image

    def counting_read(path, **options):
        reads.append(path)
        return read_image(path, **options)

    monkeypatch.setattr(dataset_module, "read_image", counting_read)
    dataset = make_dataset(
        index, CLASSES, image_size=SIZE, batch_size=4, training=True, epochs=3, cache=True
    )
    images, _ = collect(dataset)
    assert len(images) == 3 * IMAGE_COUNT
    assert sorted(reads) == sorted(index["path"])  # once each, in the first epoch


def test_unknown_labels_are_named(index: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"'eel'") as error:
        make_dataset(index, ["cat", "dog"], image_size=SIZE)
    assert "'cat'" not in str(error.value).split(";")[0]


def test_unknown_augmentation_key(index: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) in augmentation: .*shear_range"):
        make_dataset(
            index, CLASSES, image_size=SIZE, training=True, augmentation={"shear_range": 1}
        )


def test_empty_index_and_missing_columns(index: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="empty"):
        make_dataset(index.iloc[:0], CLASSES, image_size=SIZE)
    with pytest.raises(ValueError, match=r"missing column.*label"):
        make_dataset(index.drop(columns="label"), CLASSES, image_size=SIZE)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"shuffle_buffer": 0}, "shuffle_buffer"),
        ({"cache": ""}, "cache"),
        ({"training": True, "first_epoch": 2, "epochs": 2}, "first_epoch must be in"),
        ({"training": True, "epochs": 0}, "epochs must be a positive int"),
        ({"color_mode": "rgba"}, "color_mode"),
        ({"image_size": (8, 0)}, "image size"),
    ],
)
def test_invalid_arguments(index: pd.DataFrame, arguments: dict, message: str) -> None:
    settings = {"image_size": SIZE, **arguments}
    with pytest.raises(ValueError, match=message):
        make_dataset(index, CLASSES, **settings)


def test_labels_to_ids() -> None:
    np.testing.assert_array_equal(labels_to_ids(["b", "a", "b"], ["a", "b"]), [1, 0, 1])
    assert labels_to_ids(["a"], ["a"]).dtype == np.int32
    with pytest.raises(ValueError, match="unique"):
        labels_to_ids(["a"], ["a", "a"])
    with pytest.raises(ValueError, match="non-empty"):
        labels_to_ids(["a"], [])
