"""The training pipeline: preprocess -> train -> evaluate -> register if AUC clears the bar, else fail.

Every execution is a run of the experiment named after the pipeline (``<project>-<env>-training``), so
each environment's runs, their parameters and their metrics are found in one place; with an MLflow
App or tracking server in settings, the pipeline and its training step log to MLflow as well.

Written with the SageMaker Python SDK v3. Given a session whose default bucket is set and step scripts as
S3 URIs (``pipeline_code.render`` passes both), ``build_pipeline`` makes no AWS call.
"""

from __future__ import annotations

from pipeline_code.render import SOURCE_ARCHIVE
from pipeline_code.settings import ARTIFACTS_PREFIX, INFERENCE_CODE_DIR, SKLEARN_VERSION, PipelineSettings

TRAINING_ENTRY_POINT = "train.py"
# The training step's hyperparameters, declared here only: each is a pipeline parameter with this default,
# which a run may override (Studio's "Execute", `aws sagemaker start-pipeline-execution
# --pipeline-parameters`), passed to train.py as the --argument it requires.
HYPERPARAMETERS = {
    # parameter: (train.py argument, default)
    "NEstimators": ("n-estimators", 200),
    "MaxDepth": ("max-depth", 8),
    "RandomState": ("random-state", 42),
}


def build_pipeline(settings: PipelineSettings, session):
    """The pipeline for `settings`; `session` is a PipelineSession, so nothing runs while it is built."""
    from sagemaker.core import image_uris
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train import ModelTrainer
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.training.configs import Compute, InputData, Networking, OutputDataConfig
    from sagemaker.core.shapes import MlflowConfig
    from sagemaker.mlops.workflow.pipeline_experiment_config import PipelineExperimentConfig

    prefix = f"s3://{settings.artifacts_bucket}/{ARTIFACTS_PREFIX}{settings.pipeline_name}"

    def input_(name: str, s3_uri, local_path: str) -> ProcessingInput:
        s3_input = ProcessingS3Input(s3_uri=s3_uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File")
        return ProcessingInput(input_name=name, s3_input=s3_input)

    def output(step: str, name: str, local_path: str) -> ProcessingOutput:
        # Per execution, so runs never overwrite each other; caching ignores output locations.
        s3_uri = Join(on="/", values=[prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, step, name])
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(s3_uri=s3_uri, local_path=local_path, s3_upload_mode="EndOfJob"))

    input_data = ParameterString("InputDataUri", default_value=settings.training_data_uri)
    processing_instance = ParameterString("ProcessingInstanceType", default_value=settings.processing_instance_type)
    training_instance = ParameterString("TrainingInstanceType", default_value=settings.training_instance_type)
    auc_threshold = ParameterFloat("AucThreshold", default_value=settings.auc_threshold)
    hyperparameters = {name: ParameterInteger(name, default_value=default) for name, (_, default) in HYPERPARAMETERS.items()}
    cache = CacheConfig(enable_caching=True, expire_after="P30D")

    sklearn_image = image_uris.retrieve("sklearn", region=settings.region, version=SKLEARN_VERSION, instance_type="ml.m5.large")
    serving_image = image_uris.retrieve(
        "sklearn", region=settings.region, version=SKLEARN_VERSION, instance_type="ml.m5.large", image_scope="inference"
    )
    # VpcOnly: the jobs get the network Studio has (subnets without internet, the VPC endpoints), not SageMaker's.
    in_vpc = {"subnets": list(settings.subnet_ids), "security_group_ids": list(settings.security_group_ids)}
    processor = ScriptProcessor(
        role=settings.role_arn,
        image_uri=sklearn_image,
        command=["python3"],
        instance_count=1,
        instance_type=processing_instance,
        volume_kms_key=settings.kms_key_arn,
        output_kms_key=settings.kms_key_arn,
        sagemaker_session=session,
        network_config=NetworkConfig(**in_vpc) if settings.subnet_ids else None,
    )

    preprocess = ProcessingStep(
        name="Preprocess",
        description="Validate the CSVs under the input prefix, split them, and record which object versions were read",
        step_args=processor.run(
            code=settings.script_uris["preprocess.py"],
            inputs=[input_("data", input_data, "/opt/ml/processing/input/data")],
            outputs=[output("Preprocess", name, f"/opt/ml/processing/output/{name}") for name in ("train", "validation", "test", "manifest")],
            arguments=["--label-column", settings.label_column, "--input-uri", input_data],
        ),
        cache_config=cache,
    )

    trainer = ModelTrainer(
        training_image=sklearn_image,
        role=settings.role_arn,
        compute=Compute(instance_type=training_instance, instance_count=1, volume_kms_key_id=settings.kms_key_arn),
        output_data_config=OutputDataConfig(
            s3_output_path=Join(on="/", values=[prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, "Train"]),
            kms_key_id=settings.kms_key_arn,
        ),
        hyperparameters={
            # The scikit-learn container's script mode: it downloads this archive and runs the entry point.
            "sagemaker_program": TRAINING_ENTRY_POINT,
            "sagemaker_submit_directory": settings.script_uris[SOURCE_ARCHIVE],
            # CreateTrainingJob takes hyperparameter values as strings only; Std:Join makes a string of the number.
            **{argument: hyperparameters[name].to_string() for name, (argument, _) in HYPERPARAMETERS.items()},
        },
        sagemaker_session=session,
        # MLflow's own variables: train.py logs its parameters and validation metrics there.
        environment=(
            {"MLFLOW_TRACKING_URI": settings.mlflow_arn, "MLFLOW_EXPERIMENT_NAME": settings.pipeline_name}
            if settings.mlflow_arn
            else {}
        ),
        base_job_name="train",
        networking=Networking(**in_vpc) if settings.subnet_ids else None,
    )
    trainer.stopping_condition.max_runtime_in_seconds = 3600
    train = TrainingStep(
        name="Train",
        description="Fit a random forest on the training split",
        step_args=trainer.train(
            input_data_config=[
                InputData(channel_name=name, data_source=preprocess.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri, content_type="text/csv")
                for name in ("train", "validation")
            ]
        ),
        cache_config=cache,
    )

    evaluation_report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(
        name="Evaluate",
        description="Score the model on the held-out test split; write evaluation.json",
        step_args=processor.run(
            code=settings.script_uris["evaluate.py"],
            inputs=[
                input_("model", train.properties.ModelArtifacts.S3ModelArtifacts, "/opt/ml/processing/model"),
                input_("test", preprocess.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri, "/opt/ml/processing/test"),
            ],
            outputs=[output("Evaluate", "evaluation", "/opt/ml/processing/evaluation")],
        ),
        property_files=[evaluation_report],
        cache_config=cache,
    )
    auc = JsonGet(step_name=evaluate.name, property_file=evaluation_report, json_path="binary_classification_metrics.auc.value")

    model_builder = ModelBuilder(
        image_uri=serving_image,
        s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
        role_arn=settings.role_arn,
        sagemaker_session=session,
        # train.py copies itself into the model directory, so the artifact carries its own inference code.
        env_vars={"SAGEMAKER_PROGRAM": TRAINING_ENTRY_POINT, "SAGEMAKER_SUBMIT_DIRECTORY": INFERENCE_CODE_DIR},
    )
    register = ModelStep(
        name="Register",
        description="Register the model for review, with its evaluation report attached",
        step_args=model_builder.register(
            model_package_group_name=settings.model_package_group_name,
            content_types=["text/csv"],
            response_types=["application/json"],
            inference_instances=["ml.m5.large", "ml.m5.xlarge"],
            transform_instances=["ml.m5.large"],
            # Approval is a reviewer's decision, never a pipeline run's: no parameter can change this.
            approval_status="PendingManualApproval",
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(
                    content_type="application/json",
                    s3_uri=Join(on="/", values=[evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, "evaluation.json"]),
                )
            ),
        ),
    )
    fail = FailStep(
        name="AucBelowThreshold",
        error_message=Join(on=" ", values=["Model AUC", auc, "is below the threshold", auc_threshold]),
    )
    check = ConditionStep(
        name="CheckAuc",
        description="Register only models whose test AUC reaches the threshold",
        conditions=[ConditionGreaterThanOrEqualTo(left=auc, right=auc_threshold)],
        if_steps=[register],
        else_steps=[fail],
    )

    return Pipeline(
        name=settings.pipeline_name,
        parameters=[input_data, processing_instance, training_instance, auc_threshold, *hyperparameters.values()],
        # The experiment is the pipeline, <project>-<env>-training, so each environment's runs stay apart; set in
        # every region, since the SDK's default applies only where it believes Experiments is available.
        pipeline_experiment_config=PipelineExperimentConfig(ExecutionVariables.PIPELINE_NAME, ExecutionVariables.PIPELINE_EXECUTION_ID),
        mlflow_config=(
            MlflowConfig(mlflow_resource_arn=settings.mlflow_arn, mlflow_experiment_name=settings.pipeline_name)
            if settings.mlflow_arn
            else None
        ),
        steps=[preprocess, train, evaluate, check],
        sagemaker_session=session,
    )

