import pytest
import yaml
from tests.conftest import PROJECT

from imgclf.evaluation.config import EvaluationConfig, parse_evaluation


@pytest.mark.parametrize("env", ["base", "test"])
def test_the_projects_evaluate_parameters_are_valid(env):
    path = PROJECT / "conf" / env / "parameters_evaluate.yml"
    config = parse_evaluation(yaml.safe_load(path.read_text())["evaluate"])
    assert isinstance(config, EvaluationConfig) and all(k > 1 for k in config.top_k)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"top_k": 3}, "'top_k' must be a list of positive ints"),
        ({"top_k": [0]}, "'top_k' must be a list"),
        ({"gallery_size": 0}, "'gallery_size' must be a positive int"),
        ({"grad_cam_layer": 5}, "'grad_cam_layer' must be a layer path"),
        ({"tolerance": 2}, "'tolerance' must be a number in"),
        ({"galery_size": 3}, "galery_size"),
    ],
)
def test_bad_evaluate_parameters_are_refused(parameters, message):
    with pytest.raises(ValueError, match=message):
        parse_evaluation(parameters)
