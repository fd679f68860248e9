"""One normalized template snapshot per environment and stack. Update on purpose: `make snapshot-update`."""

from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from config import ENVIRONMENTS
from tests.synth import STACKS, Synthesized

# Asset hashes change whenever any byte of a Lambda's code changes; the code has its own tests.
_ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def normalized(template: dict) -> dict:
    return json.loads(_ASSET_HASH.sub("<asset-hash>", json.dumps(template)))


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_template_matches_snapshot(synthesized: Synthesized, snapshot_json, environment, stack):
    assert normalized(synthesized.template(environment, stack)) == snapshot_json
