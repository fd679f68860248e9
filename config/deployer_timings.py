"""How long the deployer may wait, and so how long one execution may run. Plain Python (no CDK), so the
config model checks the same numbers the construct builds from."""

from __future__ import annotations

import math
from dataclasses import dataclass

# A Standard workflow runs for at most one year.
MAX_EXECUTION_SECONDS = 365 * 24 * 3600
# SageMaker's blue/green deployment waits at most an hour between traffic steps.
MAX_GUARDRAILS_WAIT_SECONDS = 3600


@dataclass(frozen=True)
class CanaryTimings:
    """Every wait of the deployer. Tests use zero-second intervals: the same definition, no sleeping.

    `poll_seconds` spaces the endpoint status polls (at most `max_update_polls` per create or update);
    `alarm_poll_seconds` spaces the bake's alarm checks (`bake_checks` of them), so an ALARM is acted on
    within that interval however slowly endpoints update.
    """

    poll_seconds: int
    max_update_polls: int
    bake_checks: int
    alarm_poll_seconds: int

    @property
    def update_wait_seconds(self) -> int:
        return self.poll_seconds * self.max_update_polls

    @property
    def bake_seconds(self) -> int:
        return self.alarm_poll_seconds * self.bake_checks

    def longest_path_seconds(self, approval_seconds: int = 0) -> int:
        """The longest run through the deployer: the canary update, the bake, the approval wait, the
        promotion, then a rollback that first lets an update in progress settle and then waits for its
        own update."""
        return 4 * self.update_wait_seconds + self.bake_seconds + approval_seconds

    def execution_timeout_seconds(self, approval_seconds: int = 0) -> int:
        """The state machine's own timeout: the longest path plus a quarter and an hour for the AWS
        calls themselves and their retries. An execution timeout cannot be caught, so it must never
        be what ends a deployment."""
        return math.ceil(self.longest_path_seconds(approval_seconds) * 1.25) + 3600
