"""The YAML examples of docs/training.md and docs/transfer.md work as written: merged into
the project's own parameters the way Kedro merges an environment, they declare the variants
and build the seed study's models."""

import re
from pathlib import Path

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from imgclf.imaging.decode import image_shape
from imgclf.imaging.settings import image_settings
from imgclf.models.cnn import build_cnn
from imgclf.pipelines.scratch_cnn.nodes import resolve_variant
from imgclf.pipelines.transfer import nodes as transfer_nodes
from imgclf.training.search_space import grid_values
from imgclf.training.tuning import parse_tuning_config
from imgclf.variants import declare_variants

PROJECT = Path(__file__).resolve().parents[1]
EXAMPLES = [
    example
    for page in ("training.md", "transfer.md")
    for example in re.findall(r"```yaml\n(# .*?)```", (PROJECT / "docs" / page).read_text(), re.S)
]
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


def grayscale_image(tree: dict) -> dict:
    """The project's image settings for grayscale data (``color_mode: auto`` decided)."""
    return image_settings(tree["image"], pd.DataFrame({"grayscale": [True]}))


def example(title: str) -> str:
    (found,) = [text for text in EXAMPLES if text.startswith(f"# {title}:")]
    return found


@pytest.mark.parametrize(("title", "count"), S1_COUNTS.items())
def test_s1_examples_build_the_seed_models(title, count):
    tree = project_parameters(example(title))
    parameters = tree["scratch_cnn"]
    resolved = resolve_variant(
        grayscale_image(tree), parameters["defaults"], parameters["shallow"], name="s1"
    )
    model = build_cnn(resolved["architecture"], input_shape=image_shape(200, "rgb"), num_classes=2)
    assert model.count_params() == count
    assert model.output_shape == (None, 1)  # one sigmoid unit


def test_s3_example_is_a_six_point_grid_over_learning_rate_and_batch_size():
    tree = project_parameters(example("S3"))
    parameters = tree["scratch_cnn"]
    resolved = resolve_variant(
        grayscale_image(tree), parameters["defaults"], parameters["tuned"], name="s3"
    )
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


def declared(title: str, family: str) -> dict:
    """The variants of ``family`` that the example ``title`` adds, by name."""
    variants = declare_variants(project_parameters(example(title)))
    return {v.name: v for v in variants if v.family == family and v.declared not in BASE[family]}


BASE = {
    "scratch_cnn": {"shallow", "deep", "tuned"},
    "transfer": {"adam", "sgd", "adam_aug", "sgd_aug"},
}


def resolved_transfer(title: str, name: str) -> dict:
    tree = project_parameters(example(title))
    variant = declared(title, "transfer")[name]
    return transfer_nodes.resolve_variant(
        {"size": 64, "color_mode": "grayscale"},
        {**tree["backbone"], "weights": None},
        tree["transfer"]["defaults"],
        tree["transfer"][variant.declared],
        name=variant.namespace,
        arm=variant.arm,
    )


def test_s4_ablation_is_one_sweep_of_nine_arms_without_other_augmentation():
    arms = declared("S4 ablation", "scratch_cnn")
    assert [variant.arm for variant in arms.values()] == [
        "none",
        "rotation",
        "width_shift",
        "height_shift",
        "shear",
        "zoom",
        "horizontal_flip",
        "vertical_flip",
        "all",
    ]
    assert {variant.sweep for variant in arms.values()} == {"scratch_cnn.augmentation"}
    tree = project_parameters(example("S4 ablation"))
    family = tree["scratch_cnn"]
    shear = resolve_variant(
        grayscale_image(tree), family["defaults"], family["augmentation"], name="a", arm="shear"
    )["training"]["augmentation"]
    assert shear["shear"] == 0.2
    assert shear["rotation"] == shear["zoom"] == 0.0  # not the defaults' augmentation


def test_s2_mobilenet_head_is_built_as_written():
    parameters = resolved_transfer("S2", "s2_mobilenet")
    network = transfer_nodes.variant_network(parameters, num_classes=8)
    dense = [layer.units for layer in network.head.layers if hasattr(layer, "units")]
    assert dense == [1024, 512, 8]
    assert parameters["training"]["optimizer"]["learning_rate"] == 5e-4


def test_s2_cut_mobilenet_drops_its_last_four_layers_under_a_conv_and_dense_head():
    network = transfer_nodes.variant_network(resolved_transfer("S2 cut", "s2_cut"), num_classes=8)
    backbone = network.model.get_layer("backbone")
    assert backbone.layers[-1].name == "conv_dw_13_bn"  # MobileNet's last 4 layers gone
    conv = network.model.get_layer("head_block1_conv1")
    assert (conv.filters, conv.kernel_size, conv.padding) == (256, (3, 3), "same")
    dense = [layer.units for layer in network.head.layers if hasattr(layer, "units")]
    assert dense == [512, 8]
    assert network.model.output_shape == (None, 8)


def test_s2_two_conv_head_has_two_convolutions_with_batch_norm():
    parameters = resolved_transfer("S2 two conv", "s2_two_conv")
    network = transfer_nodes.variant_network(parameters, num_classes=8)
    names = [layer.name for layer in network.head.layers][1:5]  # after the head's input
    assert names == ["head_block1_conv1", "head_block1_bn1", "head_block2_conv1", "head_block2_bn1"]
    assert [network.model.get_layer(f"head_block{n}_conv1").filters for n in (1, 2)] == [128, 64]
    assert network.model.get_layer("backbone").layers[-1].name == "conv_dw_13_bn"
    dense = [layer.units for layer in network.head.layers if hasattr(layer, "units")]
    assert dense == [256, 128, 8]


def test_s4_cuts_are_six_arms_at_the_reports_activations_each_with_its_own_feature_cache():
    arms = declared("S4 cuts", "transfer")
    assert list(arms) == [f"cut_activation_{n}" for n in (46, 43, 40, 37, 22, 7)]
    assert all(variant.trains_on == "features" for variant in arms.values())
    assert len({variant.features for variant in arms.values()}) == 6
    parameters = resolved_transfer("S4 cuts", "cut_activation_37")
    backbone = transfer_nodes.variant_network(parameters, num_classes=8).model.get_layer("backbone")
    assert backbone.layers[-1].name == "conv4_block5_out"


def test_s4_search_tunes_the_head_on_cached_features():
    (variant,) = declared("S4 search", "transfer").values()
    assert variant.tuned and variant.trains_on == "features"
    tuning = parse_tuning_config(resolved_transfer("S4 search", "s4_search")["tuning"])
    assert tuning.search_space.names == ("pooling", "optimizer", "learning_rate")
