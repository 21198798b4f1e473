"""Check that the synthetic fingers demo set is learnable by a small CNN but not trivial.

Generates a demo set with :func:`imgclf.datasets.fingers_generator.generate_fingers`,
trains a logistic regression on raw pixels and a small Keras CNN on it, and prints one
JSON object with the test accuracies and timings to stdout (logs go to stderr)::

    python benchmarks/demo_learnability.py --full-generation-timing
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from imgclf.datasets.fingers_generator import CLASSES, generate_fingers

logger = logging.getLogger("demo_learnability")

FULL_PER_SPLIT = {"train": 1500, "test": 300}
GENERATED_SIZE = 128


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--test-per-class", type=int, default=50)
    parser.add_argument("--size", type=int, default=64, help="side the images are resized to")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="generation processes")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary dir")
    parser.add_argument(
        "--full-generation-timing",
        action="store_true",
        help=f"also time generating {FULL_PER_SPLIT} images per class at {GENERATED_SIZE}px",
    )
    return parser.parse_args(argv)


def load_split(folder: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Images of one split folder as ``(n, size, size)`` uint8 and their class indices."""
    paths = sorted(folder.glob("*.png"))
    images = np.stack(
        [
            np.asarray(Image.open(p).convert("L").resize((size, size), Image.Resampling.BILINEAR))
            for p in paths
        ]
    )
    labels = np.array([CLASSES.index(p.stem[-2:]) for p in paths])
    return images, labels


def logistic_regression_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> tuple[float, float]:
    """Test accuracy and training seconds of a logistic regression on raw pixels."""
    from sklearn.linear_model import LogisticRegression

    flat_train = x_train.reshape(len(x_train), -1) / 255.0
    flat_test = x_test.reshape(len(x_test), -1) / 255.0
    start = time.perf_counter()
    model = LogisticRegression(max_iter=1000).fit(flat_train, y_train)
    seconds = time.perf_counter() - start
    return float(model.score(flat_test, y_test)), seconds


def cnn_accuracy(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    epochs: int,
    seed: int,
) -> tuple[float, float]:
    """Test accuracy and training seconds of a small CNN (20% of train held out)."""
    import keras

    keras.utils.set_random_seed(seed)
    size = x_train.shape[1]
    model = keras.Sequential(
        [
            keras.Input((size, size, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(128, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(len(CLASSES), activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    log_epoch = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logger.info(
            "epoch %d: %s", epoch + 1, {k: round(float(v), 4) for k, v in logs.items()}
        )
    )
    order = np.random.default_rng(seed).permutation(len(x_train))  # validation_split = tail
    start = time.perf_counter()
    model.fit(
        x_train[order, ..., None],
        y_train[order],
        epochs=epochs,
        batch_size=32,
        validation_split=0.2,
        callbacks=[log_epoch],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test[..., None], y_test, verbose=0)
    return float(accuracy), seconds


def run(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    per_split = {"train": args.train_per_class, "test": args.test_per_class}
    demo = workdir / "demo"
    shutil.rmtree(demo, ignore_errors=True)  # no leftovers from an earlier run
    start = time.perf_counter()
    images = generate_fingers(
        demo, per_split=per_split, size=GENERATED_SIZE, seed=args.seed, workers=args.workers
    )
    generation_seconds = time.perf_counter() - start
    logger.info("Generated %d images in %.1f s", images, generation_seconds)

    x_train, y_train = load_split(demo / "train", args.size)
    x_test, y_test = load_split(demo / "test", args.size)
    logger.info("Loaded %d train and %d test images", len(x_train), len(x_test))

    logreg, logreg_seconds = logistic_regression_accuracy(x_train, y_train, x_test, y_test)
    logger.info("Logistic regression test accuracy %.3f (%.1f s)", logreg, logreg_seconds)
    cnn, cnn_seconds = cnn_accuracy(
        x_train, y_train, x_test, y_test, epochs=args.epochs, seed=args.seed
    )
    logger.info("CNN test accuracy %.3f (%.1f s)", cnn, cnn_seconds)

    result: dict[str, object] = {
        "generation_seconds": round(generation_seconds, 2),
        "images": images,
        "train_images": len(x_train),
        "test_images": len(x_test),
        "size": args.size,
        "epochs": args.epochs,
        "seed": args.seed,
        "chance": round(1 / len(CLASSES), 4),
        "logreg_test_accuracy": round(logreg, 4),
        "logreg_train_seconds": round(logreg_seconds, 2),
        "cnn_test_accuracy": round(cnn, 4),
        "cnn_train_seconds": round(cnn_seconds, 2),
    }
    if args.full_generation_timing:
        full = workdir / "full"
        start = time.perf_counter()
        result["full_generation_images"] = generate_fingers(
            full,
            per_split=FULL_PER_SPLIT,
            size=GENERATED_SIZE,
            seed=args.seed,
            workers=args.workers,
        )
        result["full_generation_seconds"] = round(time.perf_counter() - start, 2)
        logger.info("Full generation took %.1f s", result["full_generation_seconds"])
        shutil.rmtree(full)
    return result


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="fingers-demo-") as tmp:
            result = run(args, Path(tmp))
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = run(args, args.workdir)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
