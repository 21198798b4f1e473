"""The project's pipelines, by name: ``kedro run --pipelines ingest,split``."""

from kedro.pipeline import Pipeline

from imgclf.pipelines import evaluate, finetune, ingest, predict, scratch_cnn, split, transfer


def register_pipelines() -> dict[str, Pipeline]:
    """Register each pipeline under its name. ``__default__`` runs all but ``predict``, which
    labels new images with a model once the others have run:
    ``kedro run --pipelines predict``."""
    pipelines = {
        "ingest": ingest.create_pipeline(),
        "split": split.create_pipeline(),
        "scratch_cnn": scratch_cnn.create_pipeline(),
        "transfer": transfer.create_pipeline(),
        "finetune": finetune.create_pipeline(),
        "evaluate": evaluate.create_pipeline(),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    pipelines["predict"] = predict.create_pipeline()
    return pipelines
