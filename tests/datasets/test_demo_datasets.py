import re

import numpy as np
from PIL import Image

from imgclf.datasets import SklearnDigitsDataset, SyntheticFingersDataset


def test_synthetic_fingers_lists_the_fingers_layout(tmp_path):
    dataset = SyntheticFingersDataset(
        path=str(tmp_path / "fingers"), train_per_class=3, test_per_class=1, size=32, workers=1
    )
    frame = dataset.load()

    assert len(frame) == 12 * 4
    counts = frame.groupby(["source_split", "label"]).size()
    assert set(counts.loc["train"]) == {3} and set(counts.loc["test"]) == {1}
    assert sorted(frame["label"].unique()) == sorted(
        f"{n}{hand}" for hand in "LR" for n in range(6)
    )
    for path, label in zip(frame["path"], frame["label"]):
        assert re.fullmatch(rf"[0-9a-f-]{{36}}_{label}\.png", path.rsplit("/", 1)[1])
    with Image.open(frame["path"][0]) as image:
        assert (image.size, image.mode) == ((32, 32), "L")
    # a second load reuses the files
    modified = frame["modified"].tolist()
    assert dataset.load()["modified"].tolist() == modified


def test_sklearn_digits_written_as_folders_of_real_digits(tmp_path):
    frame = SklearnDigitsDataset(path=str(tmp_path / "digits")).load()

    assert len(frame) == 1797
    assert sorted(frame["label"].unique()) == [str(d) for d in range(10)]
    assert frame["source_split"].isna().all()
    first = frame[frame["path"].str.endswith("/0000.png")].iloc[0]
    assert first["label"] == "0"
    with Image.open(first["path"]) as image:
        pixels = np.asarray(image)
    assert pixels.shape == (8, 8) and pixels.dtype == np.uint8
    assert pixels.max() > 200 and pixels[0, 0] == 0  # a zero drawn in white on black
