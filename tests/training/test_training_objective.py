"""tune_model: trials train real Keras models; a study refuses to mix experiments."""

import keras
import optuna
import pytest

from imgclf.training.objective import EpochPruningCallback, tune_model
from imgclf.training.trials import trials_table

IMAGE = {"size": 16, "color_mode": "grayscale"}


def build(parameters):
    side = parameters["image"]["size"]
    inputs = keras.Input((side, side, 1))
    features = keras.layers.Rescaling(1 / 255)(inputs)
    features = keras.layers.Conv2D(4, 3, activation="relu")(features)
    features = keras.layers.GlobalAveragePooling2D()(features)
    features = keras.layers.Dense(parameters["head"]["units"], activation="relu")(features)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(features))


def parameters(storage, **tuning):
    return {
        "image": IMAGE,
        "head": {"units": 4},
        "training": {"epochs": 5, "batch_size": 4, "verbose": 0},
        "tuning": {
            "n_trials": 2,
            "epochs": 2,
            "storage": storage,
            "study_name": "tiny",
            "pruner": {"name": "none"},
            "search_space": {
                "units": {"type": "int", "low": 2, "high": 8, "step": 2, "target": "head.units"}
            },
            **tuning,
        },
    }


def tune(split, settings):
    return tune_model(
        settings,
        build,
        split["train"],
        split["val"],
        split["classes"],
        seed=0,
    )


def test_trials_train_for_the_tuning_epochs_and_average_executions(two_class_split, tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = tune(two_class_split, parameters(storage, executions_per_trial=2))
    table = trials_table(study)
    assert table["state"].tolist() == ["COMPLETE", "COMPLETE"]
    assert table["epochs"].tolist() == [2, 2]  # tuning.epochs, not training.epochs
    for trial in study.trials:
        # reported to the pruner as epochs trained, 1 and 2 (Keras counts from 0)
        assert sorted(trial.intermediate_values) == [1, 2]
        runs = trial.user_attrs["execution_values"]
        assert len(runs) == 2
        assert trial.value == pytest.approx(sum(runs) / 2)


@pytest.mark.slow
def test_a_study_continues_with_a_bigger_budget_and_another_experiment_gets_its_own(
    two_class_split, tmp_path
):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    first = tune(two_class_split, parameters(storage))
    assert first.study_name.startswith("tiny-")
    values = [trial.value for trial in first.trials]
    more = tune(two_class_split, parameters(storage, n_trials=3, pruner={"name": "median"}))
    assert more.study_name == first.study_name
    assert [trial.value for trial in more.trials][:2] == values
    assert len(more.trials) == 3

    changed_space = parameters(storage)
    changed_space["tuning"]["search_space"]["units"]["high"] = 16
    changed_training = parameters(storage)
    changed_training["training"]["batch_size"] = 8
    smaller_data = {**two_class_split, "train": two_class_split["train"].iloc[:-2]}
    names = {first.study_name}
    for split, settings in (
        (two_class_split, changed_space),
        (two_class_split, changed_training),
        (smaller_data, parameters(storage)),
    ):
        study = tune(split, settings)
        assert study.study_name not in names and len(study.trials) == 2  # a new study
        names.add(study.study_name)
    assert set(optuna.get_all_study_names(storage)) == names  # the old ones are kept


class PruneAlways:
    """A stand-in for an Optuna trial whose pruner always says prune."""

    def __init__(self):
        self.reports = []

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return True


def test_pruning_counts_epochs_from_one_and_spares_a_finished_trial():
    trial = PruneAlways()
    callback = EpochPruningCallback(trial, "val_accuracy")
    callback.set_params({"epochs": 3, "verbose": 0, "steps": 10})
    with pytest.raises(optuna.TrialPruned):
        callback.on_epoch_end(0, {"val_accuracy": 0.5})  # Keras' first epoch is epoch 0
    callback.on_epoch_end(2, {"val_accuracy": 0.75})  # the last epoch: no pruning
    assert trial.reports == [(1, 0.5), (3, 0.75)]


def test_a_trial_reads_its_images_at_the_size_it_tunes(two_class_split):
    sizes = {"type": "categorical", "choices": [12, 20], "target": "image.size"}
    settings = parameters(None, study_name=None, sampler={"name": "grid"})
    settings["tuning"]["search_space"] = {"size": sizes}
    table = trials_table(tune(two_class_split, settings))
    assert table["state"].tolist() == ["COMPLETE", "COMPLETE"]
    assert sorted(table["param_size"]) == [12, 20]
