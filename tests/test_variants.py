"""Variants are declared in parameters: what imgclf.variants reads from them, and the
pipeline registry building the active environment's variants."""

from __future__ import annotations

import pytest
from tests.conftest import PROJECT

from imgclf import project_parameters
from imgclf.variants import declare_variants, feature_cache_name, variant_blocks

SHARED = {
    "image": {"size": 32, "color_mode": "grayscale"},
    "backbone": {"name": "resnet50", "weights": None, "cut_at": None},
}
AUGMENTED = {"training": {"augmentation": {"rotation": 0.1}}}


def names(variants):
    return [variant.namespace for variant in variants]


def test_every_key_but_the_reserved_ones_is_a_variant_and_null_removes_one():
    parameters = {
        **SHARED,
        "scratch_cnn": {"defaults": {}, "shallow": {}, "deep": None, "wide": {"architecture": {}}},
        "transfer": {"defaults": {}, "features": {"dtype": "float16"}, "adam": {}},
        "finetune": {"defaults": {}, "adam": {}},
    }
    variants = declare_variants(parameters)
    assert names(variants) == [
        "scratch_cnn.shallow",
        "scratch_cnn.wide",
        "transfer.adam",
        "finetune.adam",
    ]
    assert [variant.tuned for variant in variants] == [False, False, False, False]
    assert variants[3].start == "adam"


def test_what_a_transfer_variant_trains_on_follows_from_its_parameters():
    cut = {"type": "categorical", "choices": ["a", "b"], "target": "backbone.cut_at"}
    pooling = {"type": "categorical", "choices": ["flatten"], "target": "head.pooling"}
    parameters = {
        **SHARED,
        "transfer": {
            "defaults": {"training": {"augmentation": {}}},
            "plain": {},
            "augmented": AUGMENTED,
            "own_backbone": {"backbone": {"name": "mobilenet_v2"}},
            "rgb": {"image": {"color_mode": "rgb"}},
            "head_search": {"tuning": {"search_space": {"pooling": pooling}}},
            "cut_search": {"tuning": {"search_space": {"cut": cut}}},
        },
    }
    variants = {variant.name: variant for variant in declare_variants(parameters)}
    assert {name: variant.trains_on for name, variant in variants.items()} == {
        "plain": "features",
        "augmented": "images",
        "own_backbone": "features",
        "rgb": "features",
        "head_search": "features",
        "cut_search": "images",
    }
    assert variants["head_search"].tuned and variants["cut_search"].tuned
    caches = {name: variant.features for name, variant in variants.items()}
    assert (
        caches["plain"]
        == caches["head_search"]
        == feature_cache_name(SHARED["backbone"], SHARED["image"])
    )
    assert caches["plain"].startswith("resnet50_32px_grayscale_")
    assert caches["own_backbone"].startswith("mobilenet_v2_32px_grayscale_")
    assert caches["rgb"].startswith("resnet50_32px_rgb_")
    assert len({caches["plain"], caches["own_backbone"], caches["rgb"]}) == 3
    assert caches["augmented"] is None and caches["cut_search"] is None


def test_a_sweep_makes_one_variant_per_arm_merged_over_its_variant():
    augmentation = {
        "training": {"epochs": 3, "augmentation": None},
        "sweep": {
            "none": {},
            "rotation": {"training": {"augmentation": {"rotation": 0.1}}},
            "tuned": {"tuning": {"search_space": {}}},
        },
    }
    parameters = {
        **SHARED,
        "scratch_cnn": {
            "defaults": {"training": {"augmentation": {"zoom": 0.5}}},
            "aug": augmentation,
        },
    }
    variants = declare_variants(parameters)
    assert names(variants) == [
        "scratch_cnn.aug_none",
        "scratch_cnn.aug_rotation",
        "scratch_cnn.aug_tuned",
    ]
    assert [(v.declared, v.arm, v.sweep) for v in variants] == [
        ("aug", "none", "scratch_cnn.aug"),
        ("aug", "rotation", "scratch_cnn.aug"),
        ("aug", "tuned", "scratch_cnn.aug"),
    ]
    assert [variant.tuned for variant in variants] == [False, False, True]
    defaults = parameters["scratch_cnn"]["defaults"]
    rotation = variant_blocks(defaults, augmentation, "rotation", name="scratch_cnn.aug")
    assert rotation == {"training": {"epochs": 3, "augmentation": {"rotation": 0.1}}}
    none = variant_blocks(defaults, augmentation, "none", name="scratch_cnn.aug")
    assert none == {"training": {"epochs": 3, "augmentation": None}}


def test_a_finetune_variant_starts_from_the_transfer_variant_it_names():
    parameters = {
        **SHARED,
        "transfer": {"defaults": {}, "mobile": {}, "other": {}},
        "finetune": {"defaults": {}, "mobile": {}, "unfrozen": {"from": "other"}},
    }
    starts = {v.name: v.start for v in declare_variants(parameters) if v.family == "finetune"}
    assert starts == {"mobile": "mobile", "unfrozen": "other"}


@pytest.mark.parametrize(
    ("families", "message"),
    [
        ({"scratch_cnn": {"defaults": {}, "deep": 3}}, "scratch_cnn.deep must be a mapping"),
        ({"scratch_cnn": {"deep": {}}}, "scratch_cnn.defaults is missing"),
        ({"scratch_cnn": {"defaults": {}, "deep.v2": {}}}, "'deep.v2' is not a valid variant"),
        ({"scratch_cnn": {"defaults": {}, "a": {"sweep": []}}}, "scratch_cnn.a.sweep must map"),
        (
            {"scratch_cnn": {"defaults": {}, "a": {"sweep": {"b": {"sweep": {}}}}}},
            "an arm cannot sweep again",
        ),
        (
            {"scratch_cnn": {"defaults": {}, "a_b": {}, "a": {"sweep": {"b": {}}}}},
            "declared twice: scratch_cnn.a_b",
        ),
        (
            {"transfer": {"defaults": {}, "t": {}}, "finetune": {"defaults": {}, "x": {}}},
            "finetune.x: from 'x' is not a transfer variant of this environment (declared: t)",
        ),
    ],
)
def test_bad_declarations_name_the_key_and_the_fix(families, message):
    with pytest.raises(ValueError) as error:
        declare_variants({**SHARED, **families})
    assert message in str(error.value)


def test_base_declares_the_nine_s0_variants_and_a_baseline_and_test_keeps_them():
    for env in ("base", "test", "full"):
        variants = declare_variants(project_parameters.load(env, PROJECT))
        assert names(variants) == [
            "scratch_cnn.shallow",
            "scratch_cnn.deep",
            "scratch_cnn.tuned",
            "transfer.adam",
            "transfer.sgd",
            "transfer.adam_aug",
            "transfer.sgd_aug",
            "finetune.adam_aug",
            "finetune.sgd_aug",
            "baseline.logistic_regression",
        ], env
        trains_on = {v.name: v.trains_on for v in variants if v.family == "transfer"}
        assert trains_on == {
            "adam": "features",
            "sgd": "features",
            "adam_aug": "images",
            "sgd_aug": "images",
        }
        assert [v.name for v in variants if v.tuned] == ["tuned"]


def test_the_registry_builds_the_variants_of_the_environment_in_use(monkeypatch):
    from imgclf.pipeline_registry import register_pipelines

    monkeypatch.chdir(PROJECT)
    monkeypatch.setenv("KEDRO_ENV", "experiments")
    monkeypatch.setattr(project_parameters, "_active", None)
    namespaces = {node.namespace for node in register_pipelines()["__default__"].nodes}
    assert {"scratch_cnn.two_conv", "scratch_cnn.colour_rgb", "transfer.pooling"} <= namespaces
    assert "scratch_cnn.shallow" not in namespaces

    project_parameters.use(project_parameters.load("base", PROJECT))  # what the hook does
    namespaces = {node.namespace for node in register_pipelines()["__default__"].nodes}
    assert "scratch_cnn.shallow" in namespaces and "scratch_cnn.two_conv" not in namespaces
