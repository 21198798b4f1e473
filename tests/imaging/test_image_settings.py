import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgclf.imaging.inspect import is_grayscale
from imgclf.imaging.settings import image_settings, resolve_image

GRAY = pd.DataFrame({"grayscale": [True, True]})
MIXED = pd.DataFrame({"grayscale": [True, False]})


def test_auto_is_grayscale_only_when_every_image_is():
    assert image_settings({"size": 32, "color_mode": "auto"}, GRAY)["color_mode"] == "grayscale"
    assert image_settings({"size": 32, "color_mode": "auto"}, MIXED)["color_mode"] == "rgb"
    assert image_settings({"size": 32, "color_mode": "rgb"}, GRAY)["color_mode"] == "rgb"


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({"size": 16, "sise": 16, "color_mode": "rgb"}, r"unknown key\(s\) in image: sise"),
        ({"size": 0, "color_mode": "rgb"}, r"image: image size must be a positive int"),
        ({"size": 16, "color_mode": "colour"}, r"image: color_mode must be one of"),
    ],
)
def test_the_image_block_is_validated(image, message):
    with pytest.raises(ValueError, match=message):
        image_settings(image, GRAY)


def test_an_index_from_before_colour_was_recorded_asks_for_ingest():
    with pytest.raises(ValueError, match="Re-run `kedro run --pipelines ingest,split`"):
        image_settings({"size": 16, "color_mode": "auto"}, pd.DataFrame({"path": ["a.png"]}))


def test_a_variant_sets_a_concrete_colour_mode():
    shared = image_settings({"size": 32, "color_mode": "auto"}, GRAY)
    assert resolve_image(shared, {"size": 64}, "v") == {"size": 64, "color_mode": "grayscale"}
    with pytest.raises(ValueError, match="v: image: color_mode auto is decided once"):
        resolve_image(shared, {"color_mode": "auto"}, "v")


def test_grayscale_pictures_stored_in_colour_count_as_grayscale():
    gray = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    assert is_grayscale(Image.fromarray(gray))
    assert is_grayscale(Image.fromarray(gray).convert("RGB"))
    assert is_grayscale(Image.fromarray(gray).convert("RGBA"))
    tinted = np.dstack([gray, gray, (gray * 0.7).astype(np.uint8)])
    assert not is_grayscale(Image.fromarray(tinted))
    palette = Image.fromarray(tinted).convert("P", palette=Image.ADAPTIVE)
    assert not is_grayscale(palette)
