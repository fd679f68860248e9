"""The IAM name pattern that keeps jobs and Studio users away from the deployers' model names."""

from fnmatch import fnmatchcase

import pytest

from config.naming import deployer_model_names, model_stem, serving_model_name_prefix

PREFIX = "mlops-dev"


@pytest.mark.parametrize("mode", ["instances", "serverless"])
@pytest.mark.parametrize("stem", [model_stem(PREFIX, "tabular", environment_names=True), model_stem(PREFIX, "churn", environment_names=False)])
def test_the_pattern_covers_every_model_a_deployer_creates(stem, mode):
    # IAM's * matches any run of characters, as fnmatch's does.
    assert fnmatchcase(f"{serving_model_name_prefix(stem, mode)}-v12", deployer_model_names(PREFIX))


@pytest.mark.parametrize("name", ["pipelines-0a1b2c3d4e5f-CreateModel-x1y2z3", "mlops-staging-model-v1", "mlops-dev-churn-experiment"])
def test_the_pattern_leaves_other_names_free(name):
    assert not fnmatchcase(name, deployer_model_names(PREFIX))
