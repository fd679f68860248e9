"""Train step: a random forest on the preprocessed training split.

Runs as the entry point of the SageMaker scikit-learn training container (script mode): the channels and
the model directory come from SM_* environment variables, with arguments to override them locally.
``model_fn`` lets the same container serve the model. With MLflow's ``MLFLOW_TRACKING_URI`` set (the
pipeline sets it to the ARN of the environment's SageMaker managed MLflow, a serverless MLflow App or a
tracking server, if it has one), the
hyperparameters and the validation AUC are logged there too, through MLflow's REST API: the scikit-learn
image has neither ``mlflow`` nor ``sagemaker-mlflow``, and a job in a private subnet cannot install them, but
it has botocore to sign the requests. Training never fails for want of tracking.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from hashlib import sha256
from pathlib import Path

import joblib
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

MODEL_FILE = "model.joblib"
# The serving container's SAGEMAKER_SUBMIT_DIRECTORY: the model artifact carries this script, so the
# endpoint's role needs to read the artifact and nothing else.
CODE_DIR = "code"
# The experiment MLflow puts runs in when none is named.
DEFAULT_EXPERIMENT = "Default"
# Per request: an unreachable tracking server delays training by this much once, then logging gives up.
MLFLOW_TIMEOUT_SECONDS = 10


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-dir", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument("--validation-dir", default=os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    # Hyperparameters arrive as command-line arguments in script mode. No defaults: the pipeline's parameters
    # (HYPERPARAMETERS in pipeline.py) are the one place they are set, so a local run names them too.
    parser.add_argument("--n-estimators", type=int, required=True)
    parser.add_argument("--max-depth", type=int, required=True)
    parser.add_argument("--random-state", type=int, required=True)
    return parser.parse_args(argv)


def read_split(directory: Path) -> tuple[pd.DataFrame, pd.Series]:
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv files in {directory}")
    data = pd.concat([pd.read_csv(path) for path in files], ignore_index=True)
    # Preprocess puts the label first.
    return data.iloc[:, 1:], data.iloc[:, 0]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started_ms = int(time.time() * 1000)
    features, labels = read_split(Path(args.train_dir))
    model = RandomForestClassifier(
        n_estimators=args.n_estimators, max_depth=args.max_depth, random_state=args.random_state, n_jobs=-1
    )
    model.fit(features, labels)

    validation_features, validation_labels = read_split(Path(args.validation_dir))
    auc = roc_auc_score(validation_labels, model.predict_proba(validation_features)[:, 1])
    # In the training job's log, next to the test AUC that the Evaluate step reports.
    print(f"validation:auc={auc:.6f}")
    log_to_mlflow(
        {"n_estimators": args.n_estimators, "max_depth": args.max_depth, "random_state": args.random_state}, {"validation_auc": auc}, started_ms
    )

    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / MODEL_FILE)
    (model_dir / "features.json").write_text(json.dumps(list(features.columns)))
    (model_dir / CODE_DIR).mkdir(exist_ok=True)
    shutil.copy(__file__, model_dir / CODE_DIR / Path(__file__).name)
    return 0


def log_to_mlflow(params: dict, metrics: dict, started_ms: int) -> bool:
    """Log a run to the MLflow App or tracking server in ``MLFLOW_TRACKING_URI``, if there is one; True if logged.

    The run is named after the training job and goes into ``MLFLOW_EXPERIMENT_NAME``, created if new.
    """
    tracking_server_arn = os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_server_arn:
        return False
    try:
        tracking_server = MlflowRestClient(tracking_server_arn)
        experiment_id = tracking_server.experiment_id(os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT)
        run = tracking_server.call(
            "runs/create", {"experiment_id": experiment_id, "run_name": os.environ.get("TRAINING_JOB_NAME", ""), "start_time": started_ms}
        )
        run_id, now_ms = run["run"]["info"]["run_id"], int(time.time() * 1000)
        tracking_server.call(
            "runs/log-batch",
            {
                "run_id": run_id,
                # MLflow's parameters are strings; its metrics are numbers with the time they were measured.
                "params": [{"key": key, "value": str(value)} for key, value in params.items()],
                "metrics": [{"key": key, "value": float(value), "timestamp": now_ms, "step": 0} for key, value in metrics.items()],
            },
        )
        tracking_server.call("runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)})
    # Whatever went wrong (network, permissions, the server), the model is still good and must be saved.
    except Exception as error:
        print(f"the run is not logged to MLflow {tracking_server_arn}: {error}", file=sys.stderr)
        return False
    return True


class MlflowError(Exception):
    """An MLflow REST API call answered with an error; ``code`` is MLflow's error code, e.g. RESOURCE_DOES_NOT_EXIST."""

    def __init__(self, endpoint: str, status: int, code: str, message: str) -> None:
        super().__init__(f"{endpoint} answered HTTP {status} {code}: {message}")
        self.code = code


class MlflowRestClient:
    """MLflow's REST API 2.0 on SageMaker managed MLflow, called as the sagemaker-mlflow plugin calls it.

    The plugin sends every request to the region's MLflow endpoint (or to ``SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT``)
    with the ARN in a routing header, signed with SigV4 for the service ``sagemaker-mlflow``, whether the ARN
    is a serverless MLflow App's or a tracking server's.
    """

    def __init__(self, arn: str) -> None:
        # Imported here: a run without a tracking server needs neither botocore nor credentials.
        import botocore.session
        from botocore.auth import SigV4Auth

        # arn:<partition>:sagemaker:<region>:<account>:mlflow-app/<id> or ...:mlflow-tracking-server/<name>
        region = arn.split(":")[3]
        credentials = botocore.session.get_session().get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials to sign the requests with")
        self.arn = arn
        self.url = (os.environ.get("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT") or f"https://{region}.experiments.sagemaker.aws").rstrip("/")
        self.signer = SigV4Auth(credentials, "sagemaker-mlflow", region)

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, created if there is none."""
        try:
            return self._experiment_named(name)
        except MlflowError as error:
            if error.code != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            return self.call("experiments/create", {"name": name})["experiment_id"]
        except MlflowError as error:
            if error.code != "RESOURCE_ALREADY_EXISTS":
                raise
        # Created meanwhile by a job running beside this one.
        return self._experiment_named(name)

    def _experiment_named(self, name: str) -> str:
        return self.call("experiments/get-by-name", query={"experiment_name": name})["experiment"]["experiment_id"]

    def call(self, endpoint: str, body: dict | None = None, *, query: dict | None = None) -> dict:
        """POST ``body`` to an endpoint, or GET it with ``query``; MLflow's JSON answer."""
        from botocore.awsrequest import AWSRequest

        url = f"{self.url}/api/2.0/mlflow/{endpoint}"
        if query:
            # Spaces as %20, as the plugin sends them, not +: SageMaker checks the signature over that form.
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"x-mlflow-sm-tracking-server-arn": self.arn, "X-Amz-Content-SHA256": sha256(data).hexdigest()}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = AWSRequest(method="POST" if body is not None else "GET", url=url, data=data, headers=headers)
        self.signer.add_auth(request)
        sent = urllib.request.Request(url, data=data if body is not None else None, headers=dict(request.headers.items()), method=request.method)
        try:
            with urllib.request.urlopen(sent, timeout=MLFLOW_TIMEOUT_SECONDS) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                answer = json.loads(error.read())
            except ValueError:
                answer = {}
            raise MlflowError(endpoint, error.code, answer.get("error_code", "no error code"), answer.get("message", error.reason)) from None


def model_fn(model_dir: str):
    """Used by the scikit-learn serving container to load the model."""
    return joblib.load(Path(model_dir) / MODEL_FILE)


if __name__ == "__main__":
    sys.exit(main())
