"""The shared fit loop: compile from configuration, history, class weights, resume."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.utils.class_weight import compute_class_weight

from imgclf.training.fit import balanced_class_weights, set_seeds, train_model

IMAGE = {"size": 16, "color_mode": "grayscale"}


def small_model(units: int = 2, activation: str = "softmax") -> keras.Model:
    inputs = keras.Input((16, 16, 1))
    features = keras.layers.Rescaling(1 / 255)(inputs)
    features = keras.layers.Conv2D(4, 3, activation="relu")(features)
    features = keras.layers.GlobalAveragePooling2D()(features)
    features = keras.layers.Dense(8, activation="relu")(features)
    return keras.Model(inputs, keras.layers.Dense(units, activation=activation)(features))


def fit(split, training, *, seed=0, model=None, **options):
    set_seeds(seed)
    return train_model(
        model or small_model(),
        split["train"],
        split["val"],
        split["classes"],
        image=IMAGE,
        training={"verbose": 0, **training},
        seed=seed,
        **options,
    )


def test_training_learns_an_easy_task_and_reports_every_epoch(two_class_split):
    model, history = fit(
        two_class_split, {"epochs": 8, "batch_size": 4, "optimizer": {"learning_rate": 0.01}}
    )
    rows = history["epochs"]
    assert [row["epoch"] for row in rows] == list(range(1, 9))
    for row in rows:
        assert set(row) == {
            "epoch",
            "loss",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "learning_rate",
            "seconds",
        }
        assert row["learning_rate"] == pytest.approx(0.01)
        assert row["seconds"] > 0
    assert history["best_value"] == max(row["val_accuracy"] for row in rows) >= 0.9
    assert rows[history["best_epoch"] - 1]["val_accuracy"] == history["best_value"]
    assert history["epochs_run"] == 8 and not history["stopped_early"]
    assert history["total_seconds"] == pytest.approx(sum(row["seconds"] for row in rows), abs=0.01)
    assert history["parameters"]["total"] == model.count_params()
    assert history["parameters"]["trainable"] == model.count_params()
    assert history["model_size_mb"] == pytest.approx(model.count_params() * 4 / 1024**2, abs=1e-3)
    assert history["resumed_at_epoch"] == 0
    json.dumps(history)  # the catalog writes it as JSON

    images = np.stack([np.full((16, 16, 1), 250.0), np.full((16, 16, 1), 10.0)])
    probabilities = model.predict(images, verbose=0)
    assert probabilities.argmax(axis=1).tolist() == [0, 1]  # raw pixels in, classes out


def test_same_seed_repeats_the_same_history(two_class_split):
    training = {"epochs": 2, "batch_size": 4, "augmentation": {"rotation": 0.1, "zoom": 0.1}}
    first = fit(two_class_split, training, seed=3)[1]["epochs"]
    second = fit(two_class_split, training, seed=3)[1]["epochs"]
    for one, other in zip(first, second):
        assert one["loss"] == pytest.approx(other["loss"], rel=1e-5)
        assert one["val_accuracy"] == other["val_accuracy"]


def test_a_sigmoid_head_trains_with_binary_cross_entropy(two_class_split):
    model, history = fit(
        two_class_split,
        {"epochs": 12, "batch_size": 4, "optimizer": {"learning_rate": 0.01}},
        model=small_model(units=1, activation="sigmoid"),
    )
    assert isinstance(model.loss, keras.losses.BinaryCrossentropy)
    assert history["best_value"] >= 0.9


def test_learning_rate_schedules_and_optimizers_follow_the_configuration(two_class_split):
    # 16 training images in batches of 4: 4 steps an epoch
    model, history = fit(
        two_class_split,
        {
            "epochs": 3,
            "batch_size": 4,
            "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
            "schedule": {"name": "exponential", "decay_rate": 0.5, "decay_epochs": 1},
        },
    )
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.nesterov and model.optimizer.momentum == 0.9
    # logged at the end of each epoch: decayed once per epoch
    assert [row["learning_rate"] for row in history["epochs"]] == pytest.approx(
        [0.05, 0.025, 0.0125]
    )
    _, history = fit(
        two_class_split,
        {"epochs": 2, "batch_size": 4, "schedule": {"name": "cosine", "alpha": 0.1}},
    )
    assert history["epochs"][-1]["learning_rate"] == pytest.approx(0.001 * 0.1)


def test_reduce_lr_on_plateau_and_early_stopping(two_class_split):
    _, history = fit(
        two_class_split,
        {
            "epochs": 30,
            "batch_size": 4,
            "optimizer": {"learning_rate": 1e-7},  # nothing improves
            "callbacks": {
                "early_stopping": {"monitor": "val_loss", "patience": 4, "min_delta": 0.01},
                "reduce_lr_on_plateau": {"patience": 1, "factor": 0.5, "min_lr": 1e-9},
            },
        },
    )
    assert history["stopped_early"] and history["epochs_run"] < 30
    rates = [row["learning_rate"] for row in history["epochs"]]
    assert rates[-1] < rates[0]


def test_tensorboard_logs_every_epoch_of_training_and_validation(two_class_split, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    training = {"epochs": 3, "batch_size": 4}
    _, quiet = fit(two_class_split, training, tensorboard_dir=tmp_path / "off")
    assert not (tmp_path / "off").exists()  # off unless the training block asks

    training["callbacks"] = {"tensorboard": True}
    _, history = fit(two_class_split, training, tensorboard_dir=tmp_path / "run")
    for folder, prefix in (("train", ""), ("validation", "val_")):
        events = EventAccumulator(str(tmp_path / "run" / folder))
        events.Reload()
        for metric in ("loss", "accuracy"):
            logged = events.Tensors(f"epoch_{metric}")
            assert [event.step for event in logged] == [0, 1, 2]
            values = [float(make_ndarray(event.tensor_proto)) for event in logged]
            assert values == pytest.approx([row[prefix + metric] for row in history["epochs"]])
    assert [row["loss"] for row in history["epochs"]] == pytest.approx(
        [row["loss"] for row in quiet["epochs"]]
    )  # the callback only watches


def test_balanced_class_weights_match_scikit_learn():
    index = pd.DataFrame({"label": ["a"] * 6 + ["b"] * 2 + ["c"] * 4, "path": "x"})
    expected = compute_class_weight("balanced", classes=np.array(["a", "b", "c"]), y=index.label)
    weights = balanced_class_weights(index, ["a", "b", "c", "d"])
    assert [weights[i] for i in range(3)] == pytest.approx(expected)
    assert weights[3] == 1.0  # no training images: left alone


def test_mismatches_between_model_data_and_classes_are_explained(two_class_split):
    with pytest.raises(ValueError, match=r"head has 3 output unit\(s\) but there are 2 classes"):
        fit(two_class_split, {"epochs": 1}, model=small_model(units=3))
    with pytest.raises(ValueError, match=r"takes images of shape \(16, 16, 1\) but the image"):
        train_model(
            small_model(),
            two_class_split["train"],
            two_class_split["val"],
            two_class_split["classes"],
            image={"size": 32, "color_mode": "grayscale"},
            training={"epochs": 1},
            seed=0,
        )


class Crash(Exception):
    pass


class CrashAfterEpoch(keras.callbacks.Callback):
    """Stand-in for a kill: raises at the end of an epoch, before the checkpoint of that
    epoch is written."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise Crash


RESUMABLE = {
    "epochs": 6,
    "batch_size": 4,
    "optimizer": {"name": "sgd", "learning_rate": 0.1},
    "schedule": {"name": "exponential", "decay_rate": 0.5},
    "augmentation": {"rotation": 0.1, "horizontal_flip": True},
    "callbacks": {"early_stopping": {"monitor": "val_loss", "patience": 20}},
}


def checkpoints(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def crash_after(split, training, epoch, backup, **options):
    with pytest.raises(Crash):
        fit(split, training, backup_dir=backup, extra_callbacks=[CrashAfterEpoch(epoch)], **options)


def test_a_crashed_fit_resumes_at_its_last_finished_epoch(two_class_split, tmp_path):
    backup = tmp_path / "backup"
    _, uninterrupted = fit(two_class_split, RESUMABLE)
    crash_after(two_class_split, RESUMABLE, 4, backup, fingerprint={"run": 1})
    # epoch 4 had not been saved when it crashed; the two newest are kept, and the best
    best = json.loads(str(np.load(backup / "epoch-0003.npz")["state"]))["best_epoch"]
    kept = {"epoch-0002.npz", "epoch-0003.npz", f"epoch-{best:04d}.npz"}
    assert checkpoints(backup) == sorted(kept)

    model, resumed = fit(two_class_split, RESUMABLE, backup_dir=backup, fingerprint={"run": 1})
    assert resumed["resumed_at_epoch"] == 3
    assert [row["epoch"] for row in resumed["epochs"]] == list(range(1, 7))
    # the optimizer's step count came back: the schedule goes on where it was
    assert [row["learning_rate"] for row in resumed["epochs"]] == pytest.approx(
        [row["learning_rate"] for row in uninterrupted["epochs"]]
    )
    # the epochs after the resume shuffled and augmented as the uninterrupted ones did
    for before, after in zip(uninterrupted["epochs"], resumed["epochs"], strict=True):
        assert after["loss"] == pytest.approx(before["loss"], rel=1e-4)
        assert after["val_loss"] == pytest.approx(before["val_loss"], rel=1e-4)
    assert not backup.exists()  # removed when training ended
    assert model.optimizer.iterations.numpy() == 6 * 4


def test_early_stopping_counts_on_across_a_resume(two_class_split, tmp_path):
    stalled = {
        "epochs": 12,
        "batch_size": 4,
        "optimizer": {"learning_rate": 1e-9},  # nothing improves: stops after 1 + patience
        "callbacks": {"early_stopping": {"monitor": "val_loss", "patience": 3, "min_delta": 0.1}},
    }
    _, uninterrupted = fit(two_class_split, stalled)
    assert uninterrupted["epochs_run"] == 4
    backup = tmp_path / "backup"
    crash_after(two_class_split, stalled, 3, backup)
    _, resumed = fit(two_class_split, stalled, backup_dir=backup)
    assert resumed["resumed_at_epoch"] == 2
    assert resumed["epochs_run"] == 4  # not 2 + 4: the patience counter was restored
    assert resumed["stopped_early"]


def test_a_fit_killed_after_early_stopping_ended_it_trains_no_more(two_class_split, tmp_path):
    stalled = {
        "epochs": 12,
        "batch_size": 4,
        "optimizer": {"learning_rate": 1e-9},
        "callbacks": {"early_stopping": {"monitor": "val_loss", "patience": 1, "min_delta": 0.1}},
    }
    backup = tmp_path / "backup"

    class CrashAtTheEnd(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            raise Crash

    with pytest.raises(Crash):
        fit(two_class_split, stalled, backup_dir=backup, extra_callbacks=[CrashAtTheEnd()])
    _, resumed = fit(two_class_split, stalled, backup_dir=backup)
    assert resumed["resumed_at_epoch"] == resumed["epochs_run"] == 2
    assert resumed["stopped_early"]


def test_a_backup_of_other_settings_is_discarded_not_resumed(two_class_split, tmp_path, caplog):
    backup = tmp_path / "backup"
    crash_after(two_class_split, RESUMABLE, 3, backup, fingerprint={"run": 1})
    _, history = fit(two_class_split, RESUMABLE, backup_dir=backup, fingerprint={"run": 2})
    assert history["resumed_at_epoch"] == 0
    assert len(history["epochs"]) == 6
    assert "made with other settings, data or starting weights" in caplog.text


def test_a_backup_of_other_starting_weights_is_discarded(two_class_split, tmp_path):
    """Fine-tuning starts from a trained model: retrained, it is another run."""
    backup = tmp_path / "backup"
    crash_after(two_class_split, RESUMABLE, 3, backup)
    set_seeds(99)
    other_start = small_model()
    _, history = fit(two_class_split, RESUMABLE, backup_dir=backup, model=other_start)
    assert history["resumed_at_epoch"] == 0


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_a_damaged_checkpoint_is_set_aside_and_an_older_one_resumed(
    two_class_split, tmp_path, caplog, damage
):
    backup = tmp_path / "backup"
    _, uninterrupted = fit(two_class_split, RESUMABLE)
    crash_after(two_class_split, RESUMABLE, 4, backup)
    newest = backup / "epoch-0003.npz"
    if damage == "truncate":
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    elif damage == "empty":
        newest.write_bytes(b"")
    else:
        newest.write_bytes(b"PK\x03\x04" + bytes(200))

    model, resumed = fit(two_class_split, RESUMABLE, backup_dir=backup)
    assert resumed["resumed_at_epoch"] == 2
    assert f"Set aside checkpoint {newest}" in caplog.text
    for before, after in zip(uninterrupted["epochs"], resumed["epochs"], strict=True):
        assert after["loss"] == pytest.approx(before["loss"], rel=1e-4)
    assert model.predict(np.zeros((1, 16, 16, 1)), verbose=0).shape == (1, 2)


def test_when_no_checkpoint_is_readable_training_starts_from_scratch(
    two_class_split, tmp_path, caplog
):
    backup = tmp_path / "backup"
    crash_after(two_class_split, RESUMABLE, 3, backup)
    for path in backup.iterdir():
        path.write_bytes(path.read_bytes()[:100])
    _, history = fit(two_class_split, RESUMABLE, backup_dir=backup)
    assert history["resumed_at_epoch"] == 0 and history["epochs_run"] == 6
    assert "No readable checkpoint left" in caplog.text
    assert caplog.text.count("Set aside checkpoint") == 2


def test_training_ends_on_the_best_epochs_weights(two_class_split):
    jumpy = {"epochs": 6, "batch_size": 4, "optimizer": {"name": "sgd", "learning_rate": 0.5}}
    model, history = fit(two_class_split, {**jumpy, "monitor": "val_loss"})
    best = history["epochs"][history["best_epoch"] - 1]
    assert history["weights_from_epoch"] == history["best_epoch"]
    assert best["val_loss"] == min(row["val_loss"] for row in history["epochs"])
    val_loss = model.evaluate(validation_images(two_class_split), verbose=0)[0]
    assert val_loss == pytest.approx(best["val_loss"], rel=1e-4)

    model, history = fit(two_class_split, {**jumpy, "monitor": "val_loss", "restore_best": False})
    assert history["weights_from_epoch"] == 6
    val_loss = model.evaluate(validation_images(two_class_split), verbose=0)[0]
    assert val_loss == pytest.approx(history["epochs"][-1]["val_loss"], rel=1e-4)


def test_the_best_epoch_survives_a_resume(two_class_split, tmp_path):
    jumpy = {
        "epochs": 6, "batch_size": 4, "optimizer": {"name": "sgd", "learning_rate": 0.5},
        "monitor": "val_loss",
    }  # fmt: skip
    _, uninterrupted = fit(two_class_split, jumpy)
    backup = tmp_path / "backup"
    crash_after(two_class_split, jumpy, 5, backup)
    model, resumed = fit(two_class_split, jumpy, backup_dir=backup)
    assert resumed["weights_from_epoch"] == uninterrupted["weights_from_epoch"]
    best = resumed["epochs"][resumed["best_epoch"] - 1]
    val_loss = model.evaluate(validation_images(two_class_split), verbose=0)[0]
    assert val_loss == pytest.approx(best["val_loss"], rel=1e-4)


def validation_images(split):
    from imgclf.imaging.dataset import make_dataset

    return make_dataset(split["val"], split["classes"], image_size=16, color_mode="grayscale")


KILLABLE_RUN = """
import json, os, signal, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
import tensorflow as tf
if {cpus!r} > 1:  # logical CPU devices (before TensorFlow starts): MirroredStrategy's replicas
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * {cpus!r}
    )
import keras
from conftest import write_two_class_split
from imgclf.training.accelerate import accelerated
from imgclf.training.fit import set_seeds, train_model, weights_digest

class KillAtEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == {kill_at!r}:  # epoch 2's checkpoint is written: a real SIGKILL
            os.kill(os.getpid(), signal.SIGKILL)

split = write_two_class_split(Path({folder!r}))
set_seeds(7)
training = {{
    "epochs": 4, "batch_size": 4, "deterministic": True, "verbose": 0,
    "optimizer": {{"name": "adam", "learning_rate": 0.01}}, "class_weight": "balanced",
    "augmentation": {{"rotation": 0.1, "zoom": 0.1, "horizontal_flip": True}},
    "callbacks": {{
        "early_stopping": {{"monitor": "val_loss", "patience": 3}},
        "reduce_lr_on_plateau": {{"monitor": "val_loss", "patience": 1, "factor": 0.5}},
    }},
    **{accelerator!r},
}}
with accelerated(training):
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(2, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs, outputs)
    model, history = train_model(
        model, split["train"], split["val"], split["classes"], image={{"size": 16,
        "color_mode": "grayscale"}}, training=training, seed=7, backup_dir={backup!r},
        extra_callbacks=[KillAtEpoch()],
    )
print(json.dumps({{
    "history": history, "weights": weights_digest(model),
    "replicas": model.distribute_strategy.num_replicas_in_sync,
    "policy": model.layers[2].dtype_policy.name, "optimizer": type(model.optimizer).__name__,
}}))
"""


def in_a_process_of_its_own(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run_killable(tmp_path, *, kill_at=None, cpus=1, accelerator=None):
    script = KILLABLE_RUN.format(
        tests=str(Path(__file__).parents[1]),
        folder=str(tmp_path / "images"),
        backup=str(tmp_path / "backup"),
        kill_at=kill_at,
        cpus=cpus,
        accelerator=accelerator or {},
    )
    return in_a_process_of_its_own(script)


@dataclasses.dataclass(frozen=True)
class Accelerator:
    """A killable run's accelerator settings and what the trained model must show."""

    cpus: int = 1
    settings: dict = dataclasses.field(default_factory=dict)
    replicas: int = 1
    policy: str = "float32"
    optimizer: str = "Adam"
    exact: bool = True  # the resumed run equals the uninterrupted one bit for bit


@pytest.mark.slow
@pytest.mark.parametrize(
    "accelerator",
    [
        Accelerator(),
        # MirroredStrategy over two logical CPU devices, as over two GPUs. Each replica keeps
        # its own batch-norm moving statistics and a checkpoint holds their mean, so after a
        # resume validation differs a little; training itself is the same.
        Accelerator(cpus=2, settings={"distribute": "mirrored"}, replicas=2, exact=False),
        # float16 layers, a float32 output, and Keras' loss scaling (its state checkpointed)
        Accelerator(
            settings={"precision": "mixed_float16"},
            policy="mixed_float16",
            optimizer="LossScaleOptimizer",
        ),
    ],
    ids=["one device", "mirrored on two CPUs", "mixed_float16"],
)
def test_a_run_killed_and_resumed_equals_the_uninterrupted_run(tmp_path, accelerator):
    """With deterministic: true, a run SIGKILLed after epoch 2 of 4 and run again ends with
    the same per-epoch metrics, learning rates and final weights as a run never killed: on
    one device, mirrored over two (up to batch norm's statistics), in mixed precision."""
    settings = {"cpus": accelerator.cpus, "accelerator": accelerator.settings}
    uninterrupted = run_killable(tmp_path / "whole", **settings)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    killed = run_killable(tmp_path / "killed", kill_at=2, **settings)
    assert killed.returncode == -9
    assert checkpoints(tmp_path / "killed" / "backup")[-1] == "epoch-0002.npz"
    resumed = run_killable(tmp_path / "killed", **settings)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    whole = json.loads(uninterrupted.stdout.strip().splitlines()[-1])
    again = json.loads(resumed.stdout.strip().splitlines()[-1])
    for run in (whole, again):
        shown = (run["replicas"], run["policy"], run["optimizer"])
        assert shown == (accelerator.replicas, accelerator.policy, accelerator.optimizer)
    assert again["history"]["resumed_at_epoch"] == 2
    timeless = [
        [
            {key: value for key, value in row.items() if key != "seconds"}
            for row in run["history"]["epochs"]
        ]
        for run in (whole, again)
    ]
    assert len(timeless[0]) == 4
    if accelerator.exact:
        assert timeless[1] == timeless[0]  # bit for bit: losses, accuracies, learning rates
        assert again["weights"] == whole["weights"]
    else:
        assert timeless[1][:2] == timeless[0][:2]  # the epochs before the kill, as logged
        assert [row["loss"] for row in timeless[1]] == [row["loss"] for row in timeless[0]]
        for resumed_row, whole_row in zip(timeless[1][2:], timeless[0][2:], strict=True):
            assert resumed_row == pytest.approx(whole_row, rel=0.02)
    assert again["history"]["weights_from_epoch"] == whole["history"]["weights_from_epoch"]


DETERMINISTIC_RUN = """
import json, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from tensorflow.python.framework.config import is_op_determinism_enabled
from conftest import write_two_class_split
from test_training_fit import fit
split = write_two_class_split(Path({folder!r}))
losses = []
for _ in range(2):
    _, history = fit(split, {{"epochs": 2, "batch_size": 4, "deterministic": True,
                               "augmentation": {{"rotation": 0.1}}}}, seed=5)
    losses.append([row["loss"] for row in history["epochs"]])
print(json.dumps({{"enabled": is_op_determinism_enabled(),
                   "losses": losses}}))
"""


def test_op_determinism_gives_identical_repeats(tmp_path):
    """In a process of its own: once on, op determinism stays on for the process."""
    script = DETERMINISTIC_RUN.format(
        tests=str(Path(__file__).parents[1]),
        folder=str(tmp_path / "images"),
    )
    completed = in_a_process_of_its_own(script)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["enabled"] is True
    first, second = result["losses"]
    assert first == second  # bit for bit
