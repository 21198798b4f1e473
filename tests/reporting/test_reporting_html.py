import numpy as np
import pandas as pd
from PIL import Image

from imgclf.reporting import html
from imgclf.reporting.tables import display_value, markdown_table


def test_cells_read_like_prose():
    assert display_value(0.12345) == "0.123"
    assert display_value(None) == display_value(float("nan")) == display_value(pd.NA) == "—"
    assert display_value({"L": 3000, "RGB": 2}) == "L: 3000, RGB: 2"
    assert display_value([["128x128", 3000]]) == "128x128: 3000"
    assert markdown_table(pd.DataFrame({"a|b": ["x|y"], "n": [1.0]})) == (
        "| a|b | n |\n| --- | --- |\n| x\\|y | 1.000 |\n"
    )


def test_the_summary_markdown_becomes_nested_lists_and_bold_text_escaped():
    text = "## Summary\n\n- **Best: <x>**, 0.9\n- Families:\n  - a\n  - b\n- last\n"
    assert html.markdown_lines(text) == (
        "<h3>Summary</h3>\n<ul>\n<li><b>Best: &lt;x&gt;</b>, 0.9\n<li>Families:\n<ul>\n"
        "<li>a\n<li>b\n</ul>\n<li>last\n</ul>"
    )


def test_photos_are_embedded_as_jpeg_and_plots_as_png():
    plot = Image.new("RGB", (400, 300), "white")
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 400, 3), np.uint8))
    assert 'src="data:image/png;base64,' in html.image_tag(plot, "plot")
    assert 'src="data:image/jpeg;base64,' in html.image_tag(photo, "photo")
