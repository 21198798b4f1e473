"""Tests for imgclf.imaging.decode.read_image on real files of every odd kind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fsspec
import numpy as np
import pytest
from PIL import Image

from imgclf.imaging.decode import read_image, size_tuple

RED = (255, 0, 0)
BLUE = (0, 0, 255)
EXIF_ORIENTATION_TAG = 0x0112


def save(image: Image.Image, path: Path, **options: object) -> str:
    """Save ``image`` to ``path`` and return the path as a str."""
    image.save(path, **options)
    return str(path)


def two_colour_palette_image() -> Image.Image:
    """A 4x4 palette image: left half index 0 (red), right half index 1 (blue)."""
    image = Image.new("P", (4, 4), 0)
    image.putpalette([*RED, *BLUE])
    for x in (2, 3):
        for y in range(4):
            image.putpixel((x, y), 1)
    return image


@pytest.mark.parametrize("extension", ["png", "bmp", "gif", "tif", "webp"])
def test_rgb_formats_round_trip(tmp_path: Path, extension: str) -> None:
    image = Image.new("RGB", (5, 3), RED)
    image.putpixel((4, 2), BLUE)
    options = {"lossless": True} if extension == "webp" else {}
    pixels = read_image(save(image, tmp_path / f"image.{extension}", **options))
    assert pixels.shape == (3, 5, 3)
    assert pixels.dtype == np.uint8
    assert pixels.flags.c_contiguous
    np.testing.assert_array_equal(pixels[0, 0], RED)
    np.testing.assert_array_equal(pixels[2, 4], BLUE)


def test_palette_image(tmp_path: Path) -> None:
    pixels = read_image(save(two_colour_palette_image(), tmp_path / "palette.png"))
    np.testing.assert_array_equal(pixels[0, 0], RED)
    np.testing.assert_array_equal(pixels[0, 3], BLUE)


@pytest.mark.parametrize("extension", ["png", "gif"])
def test_palette_transparency_is_composited(tmp_path: Path, extension: str) -> None:
    path = save(two_colour_palette_image(), tmp_path / f"palette.{extension}", transparency=0)
    over_white = read_image(path)
    over_black = read_image(path, background=0)
    np.testing.assert_array_equal(over_white[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(over_black[0, 0], (0, 0, 0))
    np.testing.assert_array_equal(over_white[0, 3], BLUE)


def test_rgba_alpha_is_blended_over_background(tmp_path: Path) -> None:
    image = Image.new("RGBA", (3, 1))
    image.putpixel((0, 0), (255, 0, 0, 0))
    image.putpixel((1, 0), (255, 0, 0, 128))
    image.putpixel((2, 0), (255, 0, 0, 255))
    path = save(image, tmp_path / "rgba.png")
    over_white = read_image(path)
    over_black = read_image(path, background=0)
    np.testing.assert_array_equal(over_white[0, 0], (255, 255, 255))
    np.testing.assert_allclose(over_white[0, 1], (255, 127.5, 127.5), atol=1)
    np.testing.assert_allclose(over_black[0, 1], (128, 0, 0), atol=1)
    np.testing.assert_array_equal(over_black[0, 2], RED)


def test_grey_background_level(tmp_path: Path) -> None:
    path = save(Image.new("RGBA", (2, 2), (10, 20, 30, 0)), tmp_path / "clear.png")
    np.testing.assert_array_equal(read_image(path, background=128)[1, 1], (128, 128, 128))


def test_la_image(tmp_path: Path) -> None:
    image = Image.new("LA", (2, 1), (200, 255))
    image.putpixel((1, 0), (200, 128))
    path = save(image, tmp_path / "la.png")
    grey = read_image(path, color_mode="grayscale", background=0)
    assert grey.shape == (1, 2, 1)
    assert grey[0, 0, 0] == 200
    assert abs(int(grey[0, 1, 0]) - 100) <= 1
    np.testing.assert_array_equal(read_image(path)[0, 0], (200, 200, 200))


def test_pa_tiff(tmp_path: Path) -> None:
    image = Image.new("PA", (2, 1), (0, 255))
    image.putpalette([*RED, *BLUE])
    image.putpixel((1, 0), (1, 0))
    pixels = read_image(save(image, tmp_path / "pa.tif"), background=255)
    np.testing.assert_array_equal(pixels[0, 0], RED)
    np.testing.assert_array_equal(pixels[0, 1], (255, 255, 255))


def test_grey_png_with_transparent_level(tmp_path: Path) -> None:
    image = Image.new("L", (2, 1), 100)
    image.putpixel((1, 0), 50)
    pixels = read_image(save(image, tmp_path / "grey_trns.png", transparency=100), background=0)
    np.testing.assert_array_equal(pixels[0, 0], (0, 0, 0))
    np.testing.assert_array_equal(pixels[0, 1], (50, 50, 50))


def sixteen_bit_values() -> np.ndarray:
    return np.array([[0, 257, 32768, 65535]], dtype=np.uint16)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = save(Image.fromarray(sixteen_bit_values()), tmp_path / "deep.png")
    assert Image.open(path).mode == "I;16"
    grey = read_image(path, color_mode="grayscale")
    np.testing.assert_array_equal(grey[0, :, 0], [0, 1, 128, 255])


def test_sixteen_bit_big_endian_tiff(tmp_path: Path) -> None:
    big_endian = sixteen_bit_values().astype(">u2")
    image = Image.frombytes("I;16B", (4, 1), big_endian.tobytes())
    path = save(image, tmp_path / "deep_be.tif")
    assert Image.open(path).mode == "I;16B"
    np.testing.assert_array_equal(read_image(path)[0, :, 0], [0, 1, 128, 255])


def test_sixteen_bit_pgm_in_mode_i(tmp_path: Path) -> None:
    path = save(Image.fromarray(sixteen_bit_values()), tmp_path / "deep.pgm")
    assert Image.open(path).mode == "I"
    np.testing.assert_array_equal(read_image(path)[0, :, 1], [0, 1, 128, 255])


def test_thirty_two_bit_signed_tiff(tmp_path: Path) -> None:
    values = np.array([[-5, 0, 2**30, 2**31 - 1]], dtype=np.int32)
    path = save(Image.fromarray(values), tmp_path / "i32.tif")
    assert Image.open(path).mode == "I"
    np.testing.assert_array_equal(read_image(path)[0, :, 0], [0, 0, 128, 255])


def test_float_tiff_in_unit_range(tmp_path: Path) -> None:
    values = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    path = save(Image.fromarray(values), tmp_path / "float.tif")
    assert Image.open(path).mode == "F"
    np.testing.assert_array_equal(read_image(path)[0, :, 2], [0, 128, 255])


def test_one_bit_image(tmp_path: Path) -> None:
    image = Image.new("1", (2, 1), 0)
    image.putpixel((1, 0), 1)
    pixels = read_image(save(image, tmp_path / "bits.png"), color_mode="grayscale")
    np.testing.assert_array_equal(pixels[0, :, 0], [0, 255])


@pytest.mark.parametrize("extension", ["jpg", "tif"])
def test_cmyk_is_converted_to_rgb(tmp_path: Path, extension: str) -> None:
    cyan = Image.new("CMYK", (8, 8), (255, 0, 0, 0))
    path = save(cyan, tmp_path / f"cmyk.{extension}")
    assert Image.open(path).mode == "CMYK"
    pixels = read_image(path)
    assert pixels.shape == (8, 8, 3)
    np.testing.assert_allclose(pixels[4, 4], (0, 255, 255), atol=3)


def test_grayscale_is_repeated_to_rgb_and_rgb_to_luma(tmp_path: Path) -> None:
    grey_path = save(Image.new("L", (3, 2), 77), tmp_path / "grey.png")
    rgb = read_image(grey_path)
    assert rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(rgb, 77)
    red_path = save(Image.new("RGB", (3, 2), RED), tmp_path / "red.png")
    luma = read_image(red_path, color_mode="grayscale")
    assert luma.shape == (2, 3, 1)
    np.testing.assert_array_equal(luma, 76)


def exif_rotated_jpeg(path: Path, size: tuple[int, int]) -> str:
    """Landscape JPEG with a red top-left quarter and EXIF orientation 6 (rotate 90° CW)."""
    width, height = size
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, width // 4, height // 4))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = 6
    return save(image, path, exif=exif.tobytes(), quality=95)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = read_image(exif_rotated_jpeg(tmp_path / "rotated.jpg", (40, 20)))
    assert pixels.shape == (40, 20, 3)
    np.testing.assert_allclose(pixels[1, 18], RED, atol=12)
    np.testing.assert_allclose(pixels[1, 1], BLUE, atol=12)


def test_exif_orientation_with_downscaled_jpeg_draft(tmp_path: Path) -> None:
    pixels = read_image(exif_rotated_jpeg(tmp_path / "rotated.jpg", (800, 400)), size=(40, 20))
    assert pixels.shape == (40, 20, 3)
    np.testing.assert_allclose(pixels[2, 17], RED, atol=12)
    np.testing.assert_allclose(pixels[2, 2], BLUE, atol=12)
    np.testing.assert_allclose(pixels[30, 17], BLUE, atol=12)


def test_resize_square_and_rectangular(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (64, 48), (10, 200, 30)), tmp_path / "plain.png")
    square = read_image(path, size=16)
    rectangle = read_image(path, size=(12, 20), color_mode="grayscale")
    assert square.shape == (16, 16, 3)
    assert rectangle.shape == (12, 20, 1)
    np.testing.assert_array_equal(square, np.broadcast_to([10, 200, 30], (16, 16, 3)))


def test_resize_averages_when_shrinking(tmp_path: Path) -> None:
    stripes = np.zeros((64, 64), dtype=np.uint8)
    stripes[:, ::2] = 255
    pixels = read_image(save(Image.fromarray(stripes), tmp_path / "stripes.png"), size=8)
    np.testing.assert_allclose(pixels, 127.5, atol=2)


def test_fsspec_memory_url() -> None:
    url = "memory://imgclf-tests/red.png"
    with fsspec.open(url, "wb") as file:
        Image.new("RGB", (3, 3), RED).save(file, format="PNG")
    try:
        np.testing.assert_array_equal(read_image(url)[1, 1], RED)
    finally:
        fsspec.filesystem("memory").rm(url)


def test_invalid_color_mode_lists_valid_modes(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (2, 2)), tmp_path / "image.png")
    with pytest.raises(ValueError, match=r"'rgb', 'grayscale'.*'hsv'"):
        read_image(path, color_mode="hsv")


@pytest.mark.parametrize("background", [-1, 256, 1.5, True, "white"])
def test_invalid_background(tmp_path: Path, background: object) -> None:
    path = save(Image.new("RGB", (2, 2)), tmp_path / "image.png")
    with pytest.raises(ValueError, match="background"):
        read_image(path, background=background)  # type: ignore[arg-type]


def test_size_tuple_accepts_int_and_pair() -> None:
    assert size_tuple(32) == (32, 32)
    assert size_tuple([24, 48]) == (24, 48)
    assert size_tuple((np.int64(5), 6)) == (5, 6)


@pytest.mark.parametrize("size", [0, -3, 1.5, True, "32", (1, 2, 3), (0, 4), (4, None), None])
def test_size_tuple_rejects_bad_sizes(size: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        size_tuple(size)  # type: ignore[arg-type]


def test_decode_module_does_not_import_tensorflow() -> None:
    code = (
        "import sys, imgclf.imaging, imgclf.imaging.decode; "
        "from imgclf.imaging import read_image; "
        "assert 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
