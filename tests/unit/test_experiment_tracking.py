"""Every training run is findable with its parameters and metrics: Experiments always, MLflow where config asks."""

from __future__ import annotations

import pytest

from tests.synth import Synthesized, environment_config
from tests.templates import cfn_text, resources


def _tracking_servers(synthesized: Synthesized, environment: str) -> list[dict]:
    return [r["Properties"] for r in resources(synthesized.template(environment, "model-build"), "AWS::SageMaker::MlflowTrackingServer").values()]


def _mlflow_vpc_endpoints(synthesized: Synthesized, environment: str) -> list[dict]:
    """Interface endpoints to the MLflow tracking servers' API, aws.sagemaker.<region>.experiments."""
    endpoints = resources(synthesized.template(environment, "network"), "AWS::EC2::VPCEndpoint").values()
    return [e["Properties"] for e in endpoints if cfn_text(e["Properties"]["ServiceName"]).endswith(".experiments")]


def _train_step(definition: dict) -> dict:
    (train,) = [s for s in definition["Steps"] if s["Name"] == "Train"]
    return train["Arguments"]


def test_each_run_is_a_trial_of_the_experiment_named_after_the_environments_pipeline(synthesized: Synthesized, environment):
    definition = synthesized.pipeline_definition(environment, "training")

    # The pipeline is <project>-<env>-training, so each environment's runs go to an experiment of its own.
    assert definition["PipelineExperimentConfig"] == {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    }


def _upsert(synthesized: Synthesized, environment: str) -> dict:
    """The training pipeline's upsert (other pipeline folders have their own)."""
    (upsert,) = [
        r["Properties"]
        for r in synthesized.template(environment, "model-build")["Resources"].values()
        if r["Type"] == "Custom::SageMakerPipeline" and r["Properties"]["PipelineName"] == f"{synthesized.prefix(environment)}-training"
    ]
    return upsert


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_environments_without_mlflow_have_no_tracking_server_and_log_to_none(synthesized: Synthesized, environment):
    definition = synthesized.pipeline_definition(environment, "training")

    assert not environment_config(environment).model_build.mlflow.enabled
    assert _tracking_servers(synthesized, environment) == []
    assert definition["MlflowConfig"] is None
    assert "MLFLOW_TRACKING_URI" not in (_train_step(definition).get("Environment") or {})
    assert _mlflow_vpc_endpoints(synthesized, environment) == []


def test_prods_training_jobs_reach_the_tracking_server_from_their_private_subnets(synthesized: Synthesized):
    (endpoint,) = _mlflow_vpc_endpoints(synthesized, "prod")

    # The private DNS name the training job's requests resolve: <region>.experiments.sagemaker.aws.
    assert endpoint["PrivateDnsEnabled"] is True
    assert endpoint["VpcEndpointType"] == "Interface"


def test_the_tracking_server_endpoint_lets_only_this_accounts_principals_reach_this_accounts_servers(synthesized: Synthesized):
    (endpoint,) = _mlflow_vpc_endpoints(synthesized, "prod")
    (statement,) = endpoint["PolicyDocument"]["Statement"]

    assert statement["Action"] == "sagemaker-mlflow:*"
    assert cfn_text(statement["Resource"]).endswith(":mlflow-tracking-server/*")
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": synthesized.config("prod").account}}


def test_prod_has_a_tracking_server_of_the_configured_size_storing_artifacts_in_the_artifacts_bucket(synthesized: Synthesized):
    mlflow = environment_config("prod").model_build.mlflow
    (server,) = _tracking_servers(synthesized, "prod")

    assert server["TrackingServerName"] == "mlops-prod-mlflow"
    assert server["TrackingServerSize"] == mlflow.size
    assert server["WeeklyMaintenanceWindowStart"] == mlflow.weekly_maintenance_window
    assert cfn_text(server["ArtifactStoreUri"]).startswith("s3://<") and cfn_text(server["ArtifactStoreUri"]).endswith("/mlflow/")


def test_prods_pipeline_and_training_step_log_to_its_tracking_server(synthesized: Synthesized):
    definition = synthesized.pipeline_definition("prod", "training")
    template = synthesized.template("prod", "model-build")
    (server_id,) = resources(template, "AWS::SageMaker::MlflowTrackingServer")

    assert definition["MlflowConfig"] == {"MlflowResourceArn": "${MlflowTrackingServerArn}", "MlflowExperimentName": "mlops-prod-training"}
    assert _train_step(definition)["Environment"] == {"MLFLOW_TRACKING_URI": "${MlflowTrackingServerArn}", "MLFLOW_EXPERIMENT_NAME": "mlops-prod-training"}
    # The upsert puts the server's ARN in place of the placeholder when it deploys the definition.
    assert _upsert(synthesized, "prod")["Substitutions"]["MlflowTrackingServerArn"] == {"Fn::GetAtt": [server_id, "TrackingServerArn"]}


def test_studio_users_of_prod_may_open_its_tracking_server_and_no_other(synthesized: Synthesized):
    template = synthesized.template("prod", "studio")
    statements = [
        s for r in resources(template, "AWS::IAM::Policy").values() for s in r["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "UseTheTrackingServer"
    ]

    (statement,) = statements
    assert "sagemaker:CreatePresignedMlflowTrackingServerUrl" in statement["Action"]
    assert cfn_text(statement["Resource"]).endswith(":mlflow-tracking-server/mlops-prod-mlflow")
