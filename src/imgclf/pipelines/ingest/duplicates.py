"""Which images are copies of one another: groups of images whose perceptual hashes
(:func:`imgclf.imaging.inspect.perceptual_hash`, unit vectors of low spatial frequencies)
are within a cosine distance, directly or through others.

Comparing every pair costs n² dot products; instead, random-hyperplane hashing finds the
candidates. Each vector gets ``BANDS`` codes of ``BITS_PER_BAND`` bits (the signs of its
projections on fixed random directions); two vectors at angle θ agree on a bit with
probability 1 − θ/π, so near copies share at least one whole code almost surely, while
unrelated images seldom do. Only pairs that share a code are compared exactly. At the
default distance (0.02, θ ≈ 11.5°) a pair within it is missed with probability below
1e-6; at 0.1, about 2 %. Above ``LSH_MAX_DISTANCE``, and where candidates would be most
pairs anyway, every pair is compared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from imgclf.imaging.inspect import HASH_DTYPE

BANDS = 24
BITS_PER_BAND = 12
LSH_MAX_DISTANCE = 0.1
PLANES_SEED = 20261202
BLOCK_ROWS = 512  # compares the full demo (21,600 images) twice as fast as 2048 rows
VERIFY_PAIRS = 1 << 16


def hash_vectors(hashes: Sequence[bytes]) -> np.ndarray:
    """The perceptual hashes (bytes of equal length) as a (rows, coefficients) float32
    array."""
    joined = b"".join(hashes)
    return np.frombuffer(joined, dtype=HASH_DTYPE).astype(np.float32).reshape(len(hashes), -1)


def duplicate_components(vectors: np.ndarray, max_distance: float) -> np.ndarray:
    """A component label per row of ``vectors``: rows within ``max_distance`` (1 − cosine
    similarity) of each other, directly or through others, share a label. Identical rows
    always do; a negative distance groups nothing."""
    if max_distance < 0:
        return np.arange(len(vectors))
    distinct, inverse = np.unique(vectors, axis=0, return_inverse=True)
    pairs = near_pairs(distinct, max_distance)
    graph = coo_matrix(
        (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
        shape=(len(distinct), len(distinct)),
    )
    _, labels = connected_components(graph, directed=False)
    return labels[inverse.ravel()]


def near_pairs(vectors: np.ndarray, max_distance: float) -> np.ndarray:
    """All pairs ``(i, j)``, ``i < j``, of rows of ``vectors`` (unit length or zero) at
    most ``max_distance`` apart (1 − cosine similarity)."""
    if len(vectors) < 2:
        return np.empty((0, 2), dtype=np.int64)
    if max_distance > LSH_MAX_DISTANCE:
        return _pairs_by_blocks(vectors, max_distance)
    candidates = _candidate_pairs(vectors)
    if candidates is None:
        return _pairs_by_blocks(vectors, max_distance)
    kept = [np.empty((0, 2), dtype=np.int64)]
    for start in range(0, len(candidates), VERIFY_PAIRS):
        chunk = candidates[start : start + VERIFY_PAIRS]
        similarity = np.einsum("ij,ij->i", vectors[chunk[:, 0]], vectors[chunk[:, 1]])
        kept.append(chunk[1.0 - similarity <= max_distance])
    return np.concatenate(kept)


def _candidate_pairs(vectors: np.ndarray) -> np.ndarray | None:
    """The distinct pairs that share at least one band code, or None when they would be
    more than 1/32 of all pairs: checking a candidate costs about as much as comparing 20
    pairs in a block, so comparing every pair is then as quick (as on the demo, whose
    hands all look alike)."""
    planes = np.random.default_rng(PLANES_SEED).standard_normal(
        (vectors.shape[1], BANDS * BITS_PER_BAND)
    )
    signs = (vectors @ planes.astype(np.float32)) > 0
    weights = 1 << np.arange(BITS_PER_BAND, dtype=np.int64)
    codes = signs.reshape(len(vectors), BANDS, BITS_PER_BAND) @ weights
    budget = len(vectors) * (len(vectors) - 1) // 64
    found, total = [], 0
    for band in codes.T:
        order = np.argsort(band, kind="stable")
        values = band[order]
        for offset in range(1, len(values)):
            same = values[offset:] == values[:-offset]
            if not same.any():
                break
            first, second = order[:-offset][same], order[offset:][same]
            found.append(np.minimum(first, second) * len(vectors) + np.maximum(first, second))
            total += len(found[-1])
            if total > budget:
                return None
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    keys = np.sort(np.concatenate(found))
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]  # a pair may share many codes
    return np.stack([keys // len(vectors), keys % len(vectors)], axis=1)


def _pairs_by_blocks(vectors: np.ndarray, max_distance: float) -> np.ndarray:
    """Every pair compared, a block of rows against all later rows at a time."""
    found = [np.empty((0, 2), dtype=np.int64)]
    least_similarity = vectors.dtype.type(1.0 - max_distance)
    for start in range(0, len(vectors), BLOCK_ROWS):
        block = vectors[start : start + BLOCK_ROWS]
        rows, columns = np.nonzero(block @ vectors[start:].T >= least_similarity)
        upper = columns > rows
        found.append(np.stack([rows[upper] + start, columns[upper] + start], axis=1))
    return np.concatenate(found)
