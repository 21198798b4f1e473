"""``python -m imgclf.models.imagenet_weights [ENV]``: whether the ImageNet weights of the
environment's backbone (``backbone.name``, default env ``base``) can be had, for
``make demo``.

Prints ``imagenet`` when they are in Keras' cache or download now (into that cache, so the
run that follows reads them from there), and otherwise ``none`` (random weights), with a
warning on stderr that says why and what it means.
"""

from __future__ import annotations

import sys

from imgclf import project_parameters

PROBE_SIZE = (96, 96)  # any size every backbone accepts: the weights do not depend on it


def main(env: str = "base") -> str:
    from imgclf.models.backbones import BackboneWeightsUnavailable, build_backbone

    name = (project_parameters.load(env).get("backbone") or {}).get("name", "resnet50")
    try:
        build_backbone({"name": name, "weights": "imagenet"}, image_size=PROBE_SIZE)
    except BackboneWeightsUnavailable as error:
        print(
            f"WARNING: {error}\nWARNING: so the transfer and fine-tuning models start from "
            "random weights: they will score far below ImageNet-initialised ones, and the "
            "report says so at the top.",
            file=sys.stderr,
        )
        return "none"
    return "imagenet"


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
