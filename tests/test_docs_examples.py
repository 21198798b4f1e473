"""The YAML examples of docs/training.md and docs/transfer.md work as written: merged into
the project's own parameters the way Kedro merges an environment, they declare the variants
and build the seed study's models."""

import re
from pathlib import Path

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from imgclf.imaging.augment import parse_augmentation
from imgclf.imaging.decode import image_shape
from imgclf.imaging.settings import image_settings
from imgclf.models.cnn import build_cnn
from imgclf.models.transfer import parse_unfreeze
from imgclf.pipelines.scratch_cnn.nodes import resolve_variant
from imgclf.pipelines.transfer import nodes as transfer_nodes
from imgclf.training.search_space import apply_suggestions, grid_values, validate_targets
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
    # the examples build on base's backbone, ResNet50 (the test env's small MobileNet only
    # speeds the suite up), without its ImageNet weights
    base["backbone"] = {"name": "resnet50", "weights": None}
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
    "finetune": {"adam_aug", "sgd_aug"},
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
    assert network.model.get_layer("backbone").get_layer("conv_dw_13")  # MobileNet v1
    assert parameters["training"]["optimizer"]["learning_rate"] == 5e-4
    assert parameters["training"]["schedule"]["name"] == "exponential"


def resolved_scratch(title: str, name: str, arm: str | None = None) -> dict:
    tree = project_parameters(example(title))
    family = tree["scratch_cnn"]
    return resolve_variant(
        {"size": 200, "color_mode": "rgb"}, family["defaults"], family[name], name=name, arm=arm
    )


def test_s1_augmentation_is_the_reports_transforms():
    augmentation = parse_augmentation(
        resolved_scratch("S1 augmentation", "shallow")["training"]["augmentation"]
    )
    assert augmentation.describe() == (
        "rotation 0.0556, zoom 0.3, width_shift 0.15, height_shift 0.15, shear 0.2, "
        "horizontal_flip, brightness (0.8, 1.2)"
    )
    assert augmentation.fill_mode == "nearest"


def test_s1_search_averages_three_runs_of_ten_random_trials_over_its_blocks():
    resolved = resolved_scratch("S1 search", "tuned")
    tuning = parse_tuning_config(resolved["tuning"])
    assert (tuning.n_trials, tuning.executions_per_trial) == (10, 3)
    assert set(tuning.search_space.names) == {
        "units", "optimizer", "filters_1", "filters_2", "filters_3",
        "dropout_1", "dropout_2", "dropout_3",
    }  # fmt: skip
    validate_targets(resolved, tuning.search_space)  # every target is in the variant
    chosen = {"units": 160, "optimizer": "adam", "filters_1": 32, "filters_2": 128}
    chosen |= {"filters_3": 128, "dropout_1": 0.2, "dropout_2": 0.3, "dropout_3": 0.2}
    trial = apply_suggestions(resolved, tuning.search_space, chosen)
    model = build_cnn(trial["architecture"], input_shape=image_shape(200, "rgb"), num_classes=2)
    assert model.get_layer("block2_conv1").filters == 128
    assert model.get_layer("block2_dropout").rate == 0.3
    assert model.get_layer("block3_conv1").filters == 128
    assert model.get_layer("head_dense1").units == 160


def test_s3_dropout_is_a_sweep_of_four_rates():
    arms = declared("S3 dropout", "scratch_cnn")
    assert [variant.arm for variant in arms.values()] == [
        "rate_0_2", "rate_0_3", "rate_0_4", "rate_0_5",
    ]  # fmt: skip
    for arm, rate in (("rate_0_2", 0.2), ("rate_0_5", 0.5)):
        dense = resolved_scratch("S3 dropout", "s3_dropout", arm)["architecture"]["head"]["dense"]
        assert dense == [{"units": 1024, "activation": "relu", "dropout": rate}]


def test_s1_vgg16_has_a_sigmoid_head_and_is_fine_tuned_fully_unfrozen():
    network = transfer_nodes.variant_network(
        resolved_transfer("S1 VGG16", "s1_vgg16"), num_classes=2
    )
    dense = [layer.units for layer in network.head.layers if hasattr(layer, "units")]
    assert dense == [256, 256, 1] and network.model.output_shape == (None, 1)
    (finetune,) = declared("S1 VGG16", "finetune").values()
    assert finetune.start == "s1_vgg16"
    tree = project_parameters(example("S1 VGG16"))
    merged = {**tree["finetune"]["defaults"], **tree["finetune"]["s1_vgg16"]}
    assert parse_unfreeze(merged["unfreeze"]).last_layers == "all"


def test_s3_vgg16_reads_128_pixels_and_fine_tunes_its_last_8_layers():
    parameters = resolved_transfer("S3 VGG16", "s3_vgg16")
    assert parameters["image"]["size"] == 128
    network = transfer_nodes.variant_network(parameters, num_classes=15)
    assert network.model.input_shape == (None, 128, 128, 1)
    tree = project_parameters(example("S3 VGG16"))
    assert parse_unfreeze(tree["finetune"]["s3_vgg16"]["unfreeze"]).last_layers == 8


def test_s4_depth_searches_where_resnet50_ends_on_images():
    (variant,) = declared("S4 depth", "transfer").values()
    assert variant.tuned and variant.trains_on == "images"  # each trial its own backbone
    parameters = resolved_transfer("S4 depth", "s4_depth")
    tuning = parse_tuning_config(parameters["tuning"])
    assert dict(tuning.pruner) == {"name": "hyperband", "min_resource": 2, "reduction_factor": 3}
    validate_targets(parameters, tuning.search_space)
    chosen = {"depth": 37, "pooling": "global_max", "optimizer": "sgd", "learning_rate": 0.01}
    trial = apply_suggestions(parameters, tuning.search_space, chosen)
    backbone = transfer_nodes.variant_network(trial, num_classes=8).model.get_layer("backbone")
    assert backbone.layers[-1].name == "conv4_block5_out"


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
