"""SageMaker managed MLflow on localhost (a tracking server or a serverless MLflow App: clients address both
alike, by ARN in the routing header), as far as the training step uses one.

It answers the MLflow REST API 2.0 endpoints train.py calls (experiments/get-by-name, experiments/create,
runs/create, runs/log-batch, runs/update) with MLflow's documented JSON shapes, status codes and error codes,
and, like SageMaker's MLflow endpoint, refuses any request that is not SigV4-signed for the service
``sagemaker-mlflow`` with the caller's credentials or that does not name the tracking server in its
routing header. The signature is recomputed from the request with the (fake) credentials the environment
had when the server started.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

API = "/api/2.0/mlflow/"
ARN_HEADER = "x-mlflow-sm-tracking-server-arn"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)


class MlflowApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass
class FakeMlflowTrackingServer:
    """What the tracking server holds and what it was asked. ``failures`` maps an endpoint to the HTTP status it answers."""

    arn: str
    region: str
    experiments: dict[str, dict] = field(default_factory=lambda: {"0": {"experiment_id": "0", "name": "Default", "lifecycle_stage": "active"}})
    runs: dict[str, dict] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    url: str = ""
    # The caller's credentials as IAM knows them: the environment's fake ones when the server starts.
    credentials: Credentials = field(
        default_factory=lambda: Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], os.environ.get("AWS_SESSION_TOKEN"))
    )

    def experiment_named(self, name: str) -> dict | None:
        return next((e for e in self.experiments.values() if e["name"] == name), None)

    def answer(self, method: str, endpoint: str, query: dict[str, list[str]], body: dict) -> dict:
        if endpoint in self.failures:
            raise MlflowApiError(self.failures[endpoint], "INTERNAL_ERROR", "the tracking server failed")
        if (method, endpoint) == ("GET", "experiments/get-by-name"):
            name = _required(query.get("experiment_name", [None])[0], "experiment_name")
            experiment = self.experiment_named(name)
            if experiment is None:
                raise MlflowApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'")
            return {"experiment": experiment}
        if (method, endpoint) == ("POST", "experiments/create"):
            name = _required(body.get("name"), "name")
            if self.experiment_named(name):
                raise MlflowApiError(400, "RESOURCE_ALREADY_EXISTS", f"Experiment '{name}' already exists.")
            experiment_id = str(len(self.experiments))
            self.experiments[experiment_id] = {"experiment_id": experiment_id, "name": name, "lifecycle_stage": "active"}
            return {"experiment_id": experiment_id}
        if (method, endpoint) == ("POST", "runs/create"):
            experiment_id = _required(body.get("experiment_id"), "experiment_id")
            if experiment_id not in self.experiments:
                raise MlflowApiError(404, "RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={experiment_id} exists")
            run_id = uuid.uuid4().hex
            info = {
                "run_id": run_id,
                "run_uuid": run_id,
                "experiment_id": experiment_id,
                "run_name": body.get("run_name", ""),
                "status": "RUNNING",
                "start_time": body.get("start_time"),
                "lifecycle_stage": "active",
            }
            self.runs[run_id] = {"info": info, "data": {"params": [], "metrics": [], "tags": []}}
            return {"run": {"info": info, "data": {}, "inputs": {}}}
        if (method, endpoint) == ("POST", "runs/log-batch"):
            run = self._run(body)
            for param in body.get("params", []):
                if not isinstance(param.get("key"), str) or not isinstance(param.get("value"), str):
                    raise MlflowApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid param {param}: key and value must be strings")
            for metric in body.get("metrics", []):
                if not isinstance(metric.get("value"), (int, float)) or not isinstance(metric.get("timestamp"), int):
                    raise MlflowApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid metric {metric}: value and timestamp are required")
            run["data"]["params"] += body.get("params", [])
            run["data"]["metrics"] += body.get("metrics", [])
            return {}
        if (method, endpoint) == ("POST", "runs/update"):
            info = self._run(body)["info"]
            info.update({key: body[key] for key in ("status", "end_time", "run_name") if key in body})
            return {"run_info": info}
        raise MlflowApiError(404, "ENDPOINT_NOT_FOUND", f"No API endpoint {method} {API}{endpoint}")

    def _run(self, body: dict) -> dict:
        run_id = _required(body.get("run_id"), "run_id")
        if run_id not in self.runs:
            raise MlflowApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Run with id={run_id} not found")
        return self.runs[run_id]

    def signature_problem(self, method: str, target: str, headers, body: bytes) -> str | None:
        """Why SageMaker would refuse this request, or None if it is signed with the caller's credentials."""
        match = AUTHORIZATION.fullmatch(headers.get("Authorization", ""))
        if match is None:
            return "no SigV4 Authorization header"
        if (match["service"], match["region"], match["key"]) != ("sagemaker-mlflow", self.region, self.credentials.access_key):
            return f"signed for {match['service']} in {match['region']} by {match['key']}"
        if headers.get(ARN_HEADER) != self.arn:
            return f"{ARN_HEADER} is {headers.get(ARN_HEADER)!r}"
        if headers.get("X-Amz-Content-SHA256") != hashlib.sha256(body).hexdigest():
            return "X-Amz-Content-SHA256 is not the body's hash"
        signed = match["signed"].split(";")
        request = AWSRequest(method=method, url=f"http://{headers['Host']}{target}", data=body, headers={name: headers[name] for name in signed})
        request.context["timestamp"] = headers["X-Amz-Date"]
        signer = SigV4Auth(self.credentials, "sagemaker-mlflow", self.region)
        if signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request) != match["signature"]:
            return "the signature does not match"
        return None


def _required(value, name: str):
    if value in (None, ""):
        raise MlflowApiError(400, "INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{name}'.")
    return value


@contextmanager
def mlflow_tracking_server(arn: str) -> Iterator[FakeMlflowTrackingServer]:
    """A tracking server for ``arn`` listening on localhost for as long as the block runs."""
    server = FakeMlflowTrackingServer(arn=arn, region=arn.split(":")[3])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
            endpoint = path.removeprefix(API)
            server.requests.append(f"{self.command} {endpoint}")
            problem = server.signature_problem(self.command, self.path, self.headers, body)
            if problem:
                server.refused.append(f"{self.command} {endpoint}: {problem}")
                return self._send(403, {"message": f"The request signature we calculated does not match the signature you provided: {problem}"})
            try:
                self._send(200, server.answer(self.command, endpoint, query, json.loads(body) if body else {}))
            except MlflowApiError as error:
                self._send(error.status, {"error_code": error.code, "message": str(error)})

        def _send(self, status: int, answer: dict) -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            """Quiet: what was asked is in ``server.requests``."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    # shutdown() waits for the serving loop's next poll: the default half second per test adds up.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
