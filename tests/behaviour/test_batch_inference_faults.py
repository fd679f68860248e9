"""Fault injection at every task state of the synthesized batch inference workflow.

Scenarios are runs the workflow meets in real life; together they must enter every task state of the
definition. With every call throttled once, each ends exactly as it does without faults. With one state's
call failing for good, the execution fails with that step's error and the service's reason, and no job
starts after the failing state; a SageMaker lookup refused is not retried, and one throttled for good is
retried to its bound before it fails the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.behaviour import iam_calls, sfn_harness
from tests.behaviour.batch_world import (
    PROCESSING_ROLE,
    REGION,
    STATE_MACHINE,
    BatchWorld,
    batch_world,
)
from tests.behaviour.fault_scenarios import (
    DENIED,
    THROTTLE_MESSAGE,
    Baseline,
    assert_throttle_retried_until_the_bound,
    assert_throttles_changed_nothing,
    baseline,
    covering,
    decides_on_cause,
    service_of,
    throttled,
    waits_before_retrying,
)
from tests.behaviour.iam_calls import WorldNames, state_machine_role
from tests.behaviour.sfn_harness import Execution, Fault, injected_faults
from tests.permissions import EnvironmentPolicies, Request

# What a failure at each kind of task state ends the execution with: a job's own state and the state that
# looks its job up fail the step; the model lookups fail the model.
STEPS = {"Preprocess": "pre", "Inference": "infer", "Postprocess": "post"}
STEP_ERRORS = {
    **{step: f"{step}Failed" for step in STEPS},
    **{f"Look up the {step} job": f"{step}Failed" for step in STEPS},
}
LOOKUP_ERROR = "ModelLookupFailed"
JOB_ORDER = ["pre", "infer", "post"]
STEP_SUFFIX = {**STEPS, **{f"Look up the {step} job": suffix for step, suffix in STEPS.items()}}


@dataclass(frozen=True)
class Scenario:
    name: str
    act: Callable[[BatchWorld], Execution]

    def __str__(self) -> str:
        return self.name


def _latest(world: BatchWorld) -> Execution:
    world.register()
    return world.score()


def _named_package(world: BatchWorld) -> Execution:
    arn, _ = world.register()
    return world.score(model_package_arn=arn)


def _creates_answer_500(world: BatchWorld) -> Execution:
    world.register()
    world.shim.answer_500_after_create(times=3)
    return world.score()


SCENARIOS = [
    Scenario("score with the latest approved model", _latest),
    Scenario("score with a named model package", _named_package),
    Scenario("every create answers 500 after starting its job", _creates_answer_500),
]


@pytest.fixture(scope="module")
def baselines(batch_template) -> dict[str, Baseline]:
    found = {}
    for scenario in SCENARIOS:
        with batch_world(batch_template) as world, sfn_harness.recorded_calls() as calls:
            execution = scenario.act(world)
            found[scenario.name] = baseline(execution, sfn_harness.task_states(world.definition), calls)
    return found


@pytest.fixture(scope="module")
def workflow_permissions(batch_synthesized) -> tuple[EnvironmentPolicies, WorldNames, str]:
    """The policies of the environment the workflow was synthesized in, the world's names for them, and the workflow's role."""
    policies = EnvironmentPolicies(batch_synthesized, "dev")
    names = WorldNames(policies, "batch-inference", REGION, {PROCESSING_ROLE: policies.role_trusted_by("batch-inference", "sagemaker.amazonaws.com")})
    return policies, names, state_machine_role(policies, "batch-inference", STATE_MACHINE)


def test_every_call_the_scenarios_make_is_allowed_to_the_workflows_role(baselines, workflow_permissions):
    policies, names, caller = workflow_permissions
    rows = [(call, r) for b in baselines.values() for call in b.calls for r in iam_calls.requests(call, caller, names)]

    decided = policies.decide([r for _, r in rows])

    assert {call.state for call, _ in rows} == {state for b in baselines.values() for state in b.entered}
    assert [f"{call.state}: {d.explain()}" for (call, _), d in zip(rows, decided, strict=True) if not d.allowed] == []


def test_the_workflow_cannot_start_jobs_outside_its_prefix_or_pass_their_role_elsewhere(baselines, workflow_permissions):
    policies, names, caller = workflow_permissions
    own = [r for b in baselines.values() for call in b.calls if call.operation == "create_processing_job" for r in iam_calls.requests(call, caller, names)]
    creates = [r for r in own if r.action == "sagemaker:CreateProcessingJob"]
    passes = [r for r in own if r.action == "iam:PassRole"]
    assert creates and passes, "no scenario started a job"
    requests = [
        *(Request(r.principal, r.action, r.resource.replace(f"/{policies.prefix}-", "/other-"), r.context) for r in creates),
        *(Request(r.principal, r.action, r.resource, {"iam:PassedToService": "ec2.amazonaws.com"}) for r in passes),
        *(Request(r.principal, r.action, f"arn:aws:iam::{policies.account}:role/{policies.prefix}-other", r.context) for r in passes),
    ]
    assert all(r.resource != c.resource for r, c in zip(requests, creates, strict=False)), "no job name outside the prefix was made"

    assert [d.explain() for d in policies.decide(requests) if d.allowed or d.result == "Error"] == []


def test_every_task_state_is_entered_by_a_scenario(batch_template, baselines):
    with batch_world(batch_template) as world:
        states = set(sfn_harness.task_states(world.definition))
    entered = {state for b in baselines.values() for state in b.entered}

    assert states - entered == set(), "task states no scenario reaches: add a scenario that does"
    assert {b.execution.status for b in baselines.values()} == {"SUCCEEDED"}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_a_call_throttled_once_is_retried_and_changes_nothing(batch_template, baselines, scenario):
    with batch_world(batch_template) as world, injected_faults() as faults:
        tasks = sfn_harness.task_states(world.definition)
        faults.update({name: throttled(service_of(state), times=1) for name, state in tasks.items()})

        execution = scenario.act(world)

    expected = baselines[scenario.name].execution
    assert_throttles_changed_nothing(execution, (expected.status, expected.error), tasks, faults, world.retry_waits, world.state_waits)
    assert list(world.jobs()) == JOB_ORDER


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_a_call_that_fails_for_good_fails_the_run_with_the_reason_and_starts_no_later_job(batch_template, baselines, scenario, subtests):
    states = covering((s.name for s in SCENARIOS), baselines)[scenario.name]
    for state in states:
        with subtests.test(state=state), batch_world(batch_template) as world, injected_faults() as faults:
            task = sfn_harness.task_states(world.definition)[state]
            faults[state] = Fault(DENIED[service_of(task)])

            execution = scenario.act(world)

            assert execution.status == "FAILED"
            if decides_on_cause(task):
                # AccessDenied arrives under SageMaker's generic error name, and is not retried.
                assert (faults[state].calls, waits_before_retrying(world.state_waits, state)) == (1, [])
            assert execution.error == STEP_ERRORS.get(state, LOOKUP_ERROR)
            assert DENIED[service_of(task)] in execution.cause
            if state in STEPS:
                assert execution.cause.startswith(f"{state} job could not run: SageMaker.AmazonSageMakerException: "), execution.cause
            # A lookup follows a create that started its job; a job's own state failed before its job existed.
            started = JOB_ORDER[: JOB_ORDER.index(STEP_SUFFIX[state]) + (state not in STEPS)] if state in STEP_SUFFIX else []
            assert list(world.jobs()) == started


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_a_sagemaker_lookup_throttled_for_good_is_retried_to_the_bound_then_fails_the_run(batch_template, baselines, scenario, subtests):
    with batch_world(batch_template) as world:
        tasks = sfn_harness.task_states(world.definition)
    states = [state for state in covering((s.name for s in SCENARIOS), baselines)[scenario.name] if decides_on_cause(tasks[state])]
    if not states:
        pytest.skip(f"every SageMaker lookup {scenario.name!r} makes is throttled in an earlier scenario")
    for state in states:
        with subtests.test(state=state), batch_world(batch_template) as world, injected_faults() as faults:
            faults[state] = throttled("sagemaker")

            execution = scenario.act(world)

            assert_throttle_retried_until_the_bound(state, faults[state], world.state_waits)
            assert (execution.status, execution.error) == ("FAILED", STEP_ERRORS.get(state, LOOKUP_ERROR))
            assert THROTTLE_MESSAGE in execution.cause
