"""The YAML examples of docs/training.md work as written: merged into the project's own
parameters the way Kedro merges an environment, they build the seed study's models."""

import re
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from imgclf.imaging.decode import image_shape
from imgclf.models.cnn import build_cnn
from imgclf.pipelines.scratch_cnn.nodes import resolve_variant
from imgclf.training.search_space import grid_values
from imgclf.training.tuning import parse_tuning_config

PROJECT = Path(__file__).resolve().parents[1]
EXAMPLES = re.findall(r"```yaml\n(# .*?)```", (PROJECT / "docs/training.md").read_text(), re.S)
S1_COUNTS = {
    "S1 base": 20_573_761,
    "S1 with the filters doubled": 41_331_329,
    "S1 with two convolutions per block": 20_767_521,
}


def project_parameters(example: str) -> dict:
    """conf/base's parameters with ``example`` merged in like a conf/local file."""
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT / "conf"),
        base_env="base",
        default_run_env="test",
        merge_strategy={"parameters": "soft"},
    )
    base = loader["parameters"]
    return OmegaConf.to_container(OmegaConf.unsafe_merge(base, OmegaConf.create(example)))


def example(title: str) -> str:
    (found,) = [text for text in EXAMPLES if text.startswith(f"# {title}:")]
    return found


@pytest.mark.parametrize(("title", "count"), S1_COUNTS.items())
def test_s1_examples_build_the_seed_models(title, count):
    parameters = project_parameters(example(title))["scratch_cnn"]
    resolved = resolve_variant(parameters["defaults"], parameters["shallow"], name="s1")
    model = build_cnn(resolved["architecture"], input_shape=image_shape(200, "rgb"), num_classes=2)
    assert model.count_params() == count
    assert model.output_shape == (None, 1)  # one sigmoid unit


def test_s3_example_is_a_six_point_grid_over_learning_rate_and_batch_size():
    parameters = project_parameters(example("S3"))["scratch_cnn"]
    resolved = resolve_variant(parameters["defaults"], parameters["tuned"], name="s3")
    tuning = parse_tuning_config(resolved["tuning"])
    assert grid_values(tuning.search_space) == {
        "s3_learning_rate": [1e-3, 1e-4, 1e-5],
        "s3_batch_size": [32, 64],
    }
    model = build_cnn(
        resolved["architecture"], input_shape=image_shape(64, "grayscale"), num_classes=12
    )
    assert model.get_layer("head_dense1").units == 1024
    assert model.get_layer("head_dense1_dropout").rate == 0.5
