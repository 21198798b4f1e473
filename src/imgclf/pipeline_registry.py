"""The project's pipelines, by name: ``kedro run --pipelines ingest,split``."""

from kedro.pipeline import Pipeline

from imgclf import project_parameters
from imgclf.pipelines import evaluate, finetune, ingest, predict, scratch_cnn, split, transfer
from imgclf.variants import declare_variants


def register_pipelines() -> dict[str, Pipeline]:
    """Register each pipeline under its name, the training pipelines with the variants the
    active environment declares (:mod:`imgclf.project_parameters`). ``__default__`` runs
    all but ``predict``, which labels new images with a model once the others have run:
    ``kedro run --pipelines predict``."""
    variants = declare_variants(project_parameters.active())
    pipelines = {
        "ingest": ingest.create_pipeline(),
        "split": split.create_pipeline(),
        "scratch_cnn": scratch_cnn.create_pipeline(variants),
        "transfer": transfer.create_pipeline(variants),
        "finetune": finetune.create_pipeline(variants),
        "evaluate": evaluate.create_pipeline(variants),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    pipelines["predict"] = predict.create_pipeline()
    return pipelines
