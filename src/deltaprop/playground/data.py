"""The playground's data sets: five two-dimensional classics drawn from a seeded Generator, and digits.

Every set comes back as ``(X, y, classes)``: X (m, n_features) float64, y (m,) integer labels.
The two-dimensional ones live in [−1, 1]² (give or take the noise), so the decision boundary can be
drawn on one fixed square. Every random draw goes through ``numpy.random.default_rng(seed)``:
the same seed gives the same points.
"""

from __future__ import annotations

import numpy as np

from deltaprop.errors import ConfigError, unknown_name

__all__ = ["DATASETS", "TWO_D", "make_dataset"]


def circles(n: int, rng: np.random.Generator, noise: float):
    """Class 0 inside a disc of radius 0.5, class 1 on a ring from 0.7 to 1."""
    half = n // 2
    r = np.concatenate([rng.uniform(0, 0.5, half), rng.uniform(0.7, 1.0, n - half)])
    t = rng.uniform(0, 2 * np.pi, n)
    X = np.column_stack([r * np.cos(t), r * np.sin(t)]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(half, np.int64), np.ones(n - half, np.int64)])
    return X, y


def xor(n: int, rng: np.random.Generator, noise: float):
    """Points in the four quadrants; the label is 1 where the signs of x₁ and x₂ differ."""
    X = rng.uniform(-1, 1, (n, 2))
    X += np.sign(X) * 0.05  # a small gap along the axes, as in the XOR table
    y = ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64)
    return X + rng.normal(0, noise, (n, 2)), y


def moons(n: int, rng: np.random.Generator, noise: float):
    """Two interleaved half circles."""
    half = n // 2
    t0 = rng.uniform(0, np.pi, half)
    t1 = rng.uniform(0, np.pi, n - half)
    upper = np.column_stack([np.cos(t0), np.sin(t0)])
    lower = np.column_stack([1 - np.cos(t1), 0.5 - np.sin(t1)])
    X = np.vstack([upper, lower])
    X = (X - [0.5, 0.25]) / 1.5 + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(half, np.int64), np.ones(n - half, np.int64)])
    return X, y


def spiral(n: int, rng: np.random.Generator, noise: float):
    """Two arms winding around each other, 1.75 turns each."""
    half = n // 2
    out = []
    for k, count in enumerate((half, n - half)):
        t = np.sqrt(rng.uniform(0, 1, count)) * 3.5 * np.pi
        r = t / (3.5 * np.pi)
        angle = t + k * np.pi
        out.append(np.column_stack([r * np.cos(angle), r * np.sin(angle)]))
    X = np.vstack(out) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(half, np.int64), np.ones(n - half, np.int64)])
    return X, y


def blobs(n: int, rng: np.random.Generator, noise: float):
    """Three Gaussian blobs, one per class, centred on a triangle."""
    centres = np.array([[-0.5, -0.4], [0.5, -0.4], [0.0, 0.5]])
    y = np.arange(n, dtype=np.int64) % 3
    X = centres[y] + rng.normal(0, 0.18 + noise, (n, 2))
    return X, y


TWO_D = {"circles": circles, "xor": xor, "moons": moons, "spiral": spiral, "blobs": blobs}
DATASETS = (*TWO_D, "digits")


def make_dataset(name: str, n: int = 400, seed: int = 0, noise: float = 0.05):
    """(X, y, classes) of the data set ``name`` (``DATASETS``); n points for the 2-D ones."""
    key = str(name).lower()
    if key in TWO_D:
        if n < 4:
            raise ConfigError(f"a data set needs at least 4 points, got {n}", "use n=400")
        X, y = TWO_D[key](int(n), np.random.default_rng(seed), float(noise))
        classes = ["0", "1", "2"] if key == "blobs" else ["0", "1"]
        return np.asarray(X, np.float64), y, classes
    if key == "digits":
        from deltaprop.io.datasets import load_digits

        X, y = load_digits()
        # Gray levels 0..16 to [0, 1], as the trace's digits preset does.
        return X / 16.0, y, [str(k) for k in range(10)]
    raise unknown_name("data set", name, list(DATASETS))
