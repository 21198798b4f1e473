import os

import pandas as pd
import pytest

from imgclf.imaging.index_files import check_index_files


def _index(folder, count):
    paths = []
    for number in range(count):
        path = folder / f"{number}.png"
        path.write_bytes(b"x" * (number + 1))
        paths.append(path)
    return pd.DataFrame(
        {
            "path": [str(path) for path in paths],
            "label": "a",
            "bytes": [path.stat().st_size for path in paths],
            "modified": [path.stat().st_mtime for path in paths],
        }
    )


def test_unchanged_files_pass(tmp_path):
    check_index_files(_index(tmp_path, 3))


def test_missing_and_changed_files_are_named_with_the_fix(tmp_path):
    index = _index(tmp_path, 8)
    for number in range(6):
        (tmp_path / f"{number}.png").unlink()
    (tmp_path / "6.png").write_bytes(b"longer than before")
    os.utime(tmp_path / "7.png", (1_600_000_000, 1_600_000_000))
    with pytest.raises(ValueError) as error:
        check_index_files(index)
    message = str(error.value)
    assert message.startswith("8 of the 8 images in the index changed or disappeared since ingest")
    assert f"{tmp_path / '0.png'} (missing)" in message
    assert "and 3 more" in message  # five shown
    assert "kedro run --pipelines ingest,split" in message
    with pytest.raises(ValueError, match=r"6.png \(now 18 bytes, 7 at ingest\)"):
        check_index_files(index.iloc[6:7])
    with pytest.raises(ValueError, match=r"7.png \(modified since ingest\)"):
        check_index_files(index.iloc[7:])


def test_an_index_without_sizes_checks_existence_only(tmp_path):
    index = _index(tmp_path, 2)[["path", "label"]]
    (tmp_path / "0.png").write_bytes(b"rewritten")
    check_index_files(index)
    (tmp_path / "1.png").unlink()
    with pytest.raises(ValueError, match="1 of the 2 images"):
        check_index_files(index)
