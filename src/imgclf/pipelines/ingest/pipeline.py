"""The ``ingest`` pipeline: ``raw_images`` → ``image_index``, ``quarantine``, profile, plots."""

from kedro.pipeline import Node, Pipeline

from imgclf.pipelines.ingest.nodes import (
    group_duplicates,
    plot_class_distribution,
    plot_class_samples,
    profile_dataset,
    scan_images,
    select_valid_images,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Decode and validate every image once, then index, profile and picture the data.

    The nodes live in the ``ingest`` namespace (one collapsible box in kedro-viz); the
    datasets they exchange with the rest of the project keep their public names.
    """
    nodes = Pipeline(
        [
            Node(
                scan_images,
                inputs=["raw_images", "previous_image_scan", "params:ingest"],
                outputs="image_scan",
                name="scan_images",
            ),
            Node(
                select_valid_images,
                inputs="image_scan",
                outputs=["valid_images", "quarantine"],
                name="select_valid_images",
            ),
            Node(
                group_duplicates,
                inputs=["valid_images", "params:ingest"],
                outputs="image_index",
                name="group_duplicates",
            ),
            Node(
                profile_dataset,
                inputs=["image_scan", "image_index", "quarantine"],
                outputs="dataset_profile",
                name="profile_dataset",
            ),
            Node(
                plot_class_distribution,
                inputs="image_index",
                outputs="class_distribution_plot",
                name="plot_class_distribution",
            ),
            Node(
                plot_class_samples,
                inputs=["image_index", "params:ingest", "params:image", "params:seed"],
                outputs="class_sample_grid",
                name="plot_class_samples",
            ),
        ]
    )
    return Pipeline(
        nodes,
        namespace="ingest",
        inputs={"raw_images", "previous_image_scan"},
        outputs={
            "image_scan",
            "image_index",
            "quarantine",
            "dataset_profile",
            "class_distribution_plot",
            "class_sample_grid",
        },
        parameters={"params:ingest", "params:image", "params:seed"},
    )
