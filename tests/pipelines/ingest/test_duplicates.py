import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgclf.imaging.inspect import perceptual_hash
from imgclf.pipelines.ingest import duplicates
from imgclf.pipelines.ingest.duplicates import duplicate_components, hash_vectors, near_pairs


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def planted(seed: int, count: int = 300, dims: int = 255) -> np.ndarray:
    """Random unit vectors, every fourth followed by a neighbour at a growing distance."""
    random = np.random.default_rng(seed)
    vectors = random.standard_normal((count, dims))
    for row in range(0, count, 4):
        vectors[row + 1] = vectors[row] + random.standard_normal(dims) * row / count
    return unit(vectors)


def brute_force(vectors: np.ndarray, max_distance: float) -> set[tuple[int, int]]:
    distances = 1.0 - vectors @ vectors.T
    rows, columns = np.nonzero(distances <= max_distance)
    return {(int(i), int(j)) for i, j in zip(rows, columns) if i < j}


@pytest.mark.parametrize("max_distance", [0.01, 0.03, 0.05, 0.3])
def test_near_pairs_finds_what_comparing_every_pair_finds(max_distance):
    vectors = planted(int(max_distance * 1000))
    expected = brute_force(vectors, max_distance)
    assert len(expected) >= 3  # the planted neighbours make the check meaningful
    assert set(map(tuple, near_pairs(vectors, max_distance).tolist())) == expected


def test_crowded_codes_fall_back_to_comparing_every_pair(monkeypatch):
    # look-alikes that share most codes: candidates would be most pairs
    random = np.random.default_rng(0)
    vectors = unit(np.ones((150, 255)) + random.standard_normal((150, 255)) * 0.05)
    compared_all = []
    blocks = duplicates._pairs_by_blocks
    monkeypatch.setattr(
        duplicates, "_pairs_by_blocks", lambda *args: compared_all.append(1) or blocks(*args)
    )
    assert set(map(tuple, near_pairs(vectors, 0.003).tolist())) == brute_force(vectors, 0.003)
    assert compared_all


def test_components_chain_and_group_identical_and_blank_images():
    base = unit(np.random.default_rng(1).standard_normal((1, 255)))[0]
    bend = unit(np.random.default_rng(2).standard_normal((1, 255)))[0] * 0.15
    vectors = np.stack(
        [
            base,
            unit((base + bend)[None])[0],  # near 0
            unit((base + 2 * bend)[None])[0],  # near 1, farther from 0
            -base,  # unrelated
            base,  # identical to 0
            np.zeros(255, np.float32),  # blank pictures have no frequencies ...
            np.zeros(255, np.float32),  # ... and are copies of each other
        ]
    )
    components = duplicate_components(vectors, 0.03)
    assert components[0] == components[1] == components[2] == components[4]
    assert len({components[0], components[3], components[5]}) == 3
    assert components[5] == components[6]
    assert len(set(duplicate_components(vectors, -1))) == 7


def test_hash_vectors_reads_the_stored_hashes():
    images = [Image.new("L", (20, 20), 0), Image.linear_gradient("L").resize((40, 30))]
    hashes = pd.Series([perceptual_hash(image) for image in images])
    vectors = hash_vectors(hashes)
    assert vectors.shape == (2, 255) and vectors.dtype == np.float32
    assert not vectors[0].any()
    assert np.linalg.norm(vectors[1]) == pytest.approx(1.0, abs=1e-3)
