"""dev with every optional piece switched on at once: e-mail and Slack notifications with the daily digest,
data-quality monitoring, the batch-inference schedule and image build, a provisioned MLflow tracking server
instead of the serverless MLflow App, and Git repositories offered in Studio's JupyterLab spaces.

The pieces touch different resources, so one synth serves the tests of all of them (a synth of dev with
cdk-nag costs about a second of the suite's time); the tests of a piece read its values from here. A piece
belongs here rather than in tests/config when config/ does not have it: while tests/config holds config/'s values,
the checks of config/ (tests/user_config) read the suite's own synth and lint instead of repeating them.
"""

from __future__ import annotations

SLACK = {"workspace_id": "T0123ABCD", "channel_id": "C0123ABCD"}
EMAILS = ["ml-team@example.com", "on-call@example.com"]
DIGEST = "cron(30 6 * * ? *)"
MONITORING = {"enabled": True, "frequency": "hourly", "baseline_prefix": "baselines/mlops-dev-endpoint/"}
CONNECTION = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0a1b2c3d-4e5f-4a1b-8c2d-3e4f5a6b7c8d"
BATCH_SCHEDULE = {
    "expression": "cron(0 3 * * ? *)",
    "input_uri": "s3://bucket/in/",
    "output_uri": "s3://bucket/batch-inference/output/nightly/",
    "model": "churn",
}
IMAGE_BUILD = {"connection_arn": CONNECTION, "repository": "example-org/churn-scoring", "branch": "release"}
MLFLOW_TRACKING_SERVER = {"mode": "tracking-server", "size": "Medium", "weekly_maintenance_window": "Sat:02:00"}
GIT_REPOSITORIES = ["https://github.com/example-team/mlops-models.git"]


def switch_on(dev: dict) -> None:
    """Edits dev.yaml's contents in place."""
    dev["notifications"] = {"emails": EMAILS, "slack": SLACK, "daily_digest": DIGEST}
    # Monitoring reads captured data, which only an endpoint on instances captures.
    dev["deployment"].update(monitoring=MONITORING, data_capture={"enabled": True, "sampling_percentage": 20}, serving={"mode": "instances"})
    dev.setdefault("batch_inference", {}).update(schedule=BATCH_SCHEDULE, image_build=IMAGE_BUILD)
    dev["model_build"]["mlflow"] = MLFLOW_TRACKING_SERVER
    dev["studio"]["git_repositories"] = GIT_REPOSITORIES
