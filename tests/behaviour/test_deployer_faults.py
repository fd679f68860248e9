"""Fault injection at every task state of the synthesized deployer.

Each scenario is a deployment the deployer meets in real life (first release, rollout, rollback, ...),
with how it ends. One baseline run of every scenario, faulted as the first and third points below say, finds
the task states it enters; every task state of every definition must be entered by one, so a new state is
covered as soon as it exists. Then:
- with every call throttled once, each scenario ends as it declares, each call retried once after backing off;
- with one state's call failing for good, the execution ends as the handler it reaches promises:
  nothing changed, or rolled back to the old model with autoscaling on the live variant, or a failed
  rollback that someone is told about, never an uncaught error or a silent end. A call refused under its
  service's generic error name (SageMaker's ValidationException as SageMaker.SageMakerException, an
  AccessDenied as DynamoDB.AmazonDynamoDBException, ...) gets there at once, without a retry;
- with every call a scenario covers failing transiently under its service's generic error name as often as
  the bound allows (MAX_RETRIES times) and then answering, in the same baseline run, each is retried that
  often with the whole backoff, and the scenario ends as it declares. What comes after the bound is the
  state's handler, the one a refusal reaches (above); tests/behaviour/test_sdk_errors.py runs the bound out
  for each service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.behaviour import iam_calls, sfn_harness
from tests.behaviour.deployer_world import (
    GROUP,
    REGION,
    STATE_MACHINE,
    DeployerWorld,
    deployer_world,
)
from tests.behaviour.fault_scenarios import (
    Outcome,
    ThrottledBaseline,
    assert_retried_to_the_bound_with_the_whole_backoff,
    assert_throttles_changed_nothing,
    covering,
    decides_on_cause,
    error_caught_at,
    refused_for_good,
    service_of,
    throttled_baseline,
    waits_before_retrying,
)
from tests.behaviour.iam_calls import WorldNames, decide_each_once, state_machine_role
from tests.behaviour.sfn_harness import (
    Execution,
    Fault,
    held_before,
    injected_faults,
    state_clock,
)
from tests.permissions import Decision, EnvironmentPolicies, Request

CLEAN_UP = "Clean up old releases"
# The one state every end of an execution that may hold the endpoint's lock goes through.
RELEASE_LOCK = "Release the endpoint's lock"
# The state that writes down a release that went live, for promotions.
RECORD = "Keep the release record"
# The states that retire the other serving mode's endpoint once a release serves.
RETIREMENT = ("Look for the other mode's endpoint", "Retire the other mode's endpoint", "Announce the endpoint left to retire")


# -- scenarios -----------------------------------------------------------------------------------


def _other_colour(world: DeployerWorld) -> str:
    return "green" if "blue" in world.live_variants() else "blue"


def _quiet(world: DeployerWorld) -> None:
    world.shim.forget_scripts()
    world.quiet_alarms()


def _released(world: DeployerWorld) -> None:
    _quiet(world)
    world.ensure_released()


def _no_endpoint(world: DeployerWorld) -> None:
    _quiet(world)
    world.remove_endpoint()


def _unrecordable(prepare: Callable[[DeployerWorld], None]) -> Callable[[DeployerWorld], None]:
    """`prepare`, and then the bucket the release records go to is gone: writing one fails (NoSuchBucket)."""

    def prepared(world: DeployerWorld) -> None:
        prepare(world)
        world.lose_release_bucket()

    return prepared


def _released_with_a_stale_lock(world: DeployerWorld) -> None:
    """Released, and the lock still names an execution that ended without releasing it."""
    _released(world)
    ended = world.sfn.list_executions(stateMachineArn=world.state_machine)["executions"][0]["executionArn"]
    world.leave_lock_to(ended)


def _rollback_on_alarm(world: DeployerWorld) -> Execution:
    world.set_alarm(world.alarms[f"{_other_colour(world)}-5xx"])
    return world.deploy(world.register())


def _refused_rollback(world: DeployerWorld) -> Execution:
    world.shim.next_update("fail", reason="the new model does not start")
    return world.deploy(world.register())


def _failed_first_release(world: DeployerWorld) -> Execution:
    world.shim.next_create("fail", reason="the model does not start")
    return world.deploy(world.register())


def _failed_endpoint(world: DeployerWorld) -> None:
    """The endpoint a failed first release left: Failed, serving no variant."""
    _no_endpoint(world)
    world.shim.next_create("fail", reason="the model does not start")
    world.deploy(world.register())


def _same_package_after_a_rollback(world: DeployerWorld) -> Execution:
    package = world.register()
    world.set_alarm(world.alarms[f"{_other_colour(world)}-5xx"])
    world.deploy(package)
    _quiet(world)
    return world.deploy(package)


def _first_release_again_after_a_failed_one(world: DeployerWorld) -> Execution:
    """The model of a failed first release is still there when the same version is released again."""
    package = world.register()
    world.shim.next_create("fail", reason="no capacity for the instance type")
    world.deploy(package)
    world.remove_endpoint()
    return world.deploy(package)


def _answered_approval(world: DeployerWorld) -> Execution:
    """Approve as soon as people are asked; a request that was never sent is not answered, and an answer
    to a wait that already failed is refused as AWS refuses it."""
    told = len(world.notifications())
    execution = world.start(world.register())

    def asked_or_ended() -> str | None:
        if any(subject.startswith(f"{world.endpoint}: approve version") for subject in world.notifications()[told:]):
            return "asked"
        return None if sfn_harness.running(world.sfn, execution) else "ended"

    if sfn_harness.until(asked_or_ended, "the deployer asking for approval or ending") == "asked":
        try:
            world.sfn.send_task_success(taskToken=world.task_token(execution), output="{}")
        except (LookupError, world.sfn.exceptions.TaskDoesNotExist, world.sfn.exceptions.InvalidToken, world.sfn.exceptions.TaskTimedOut):
            pass  # The wait itself failed (a fault in it), so there was nothing left to answer.
    return world.wait(execution)


def _held_or_ended(world: DeployerWorld, execution: str, hold: sfn_harness.Hold) -> str:
    """'held' once the execution waits at the hold, 'ended' if a fault ended it before: whichever comes first,
    without waiting out a timeout for the state it will never reach."""

    def held_or_ended() -> str | None:
        if hold.arrived():
            return "held"
        return None if sfn_harness.running(world.sfn, execution) else "ended"

    return sfn_harness.until(held_or_ended, f"the deployer reaching {hold.state!r} or ending")


def _served_traffic(world: DeployerWorld) -> Execution:
    with held_before("Count the canary's invocations") as hold, state_clock() as clock:
        execution = world.start(world.register())
        if _held_or_ended(world, execution, hold) == "ended":
            return world.wait(execution)
        world.serve(_other_colour(world), 500)
        clock.advance(600)
        hold.release()
        return world.wait(execution)


def _served_and_approved(world: DeployerWorld) -> Execution:
    """A release behind both guards: it serves enough requests during its bake and is approved."""
    # Read before the release: by the bake, a serverless release already serves alone on the new colour.
    new_colour = _other_colour(world)
    with held_before("Count the canary's invocations") as hold, state_clock() as clock:
        execution = world.start(world.register())
        if _held_or_ended(world, execution, hold) == "ended":
            return world.wait(execution)
        world.serve(new_colour, 500)
        clock.advance(600)
        hold.release()

        def asked_or_ended() -> str | None:
            if "Announce the approval request" in sfn_harness.Execution(execution, "", history=sfn_harness.history(world.sfn, execution)).states_entered:
                return "asked"
            return None if sfn_harness.running(world.sfn, execution) else "ended"

        if sfn_harness.until(asked_or_ended, "the deployer asking for approval or ending") == "asked":
            try:
                world.sfn.send_task_success(taskToken=world.task_token(execution), output="{}")
            except (LookupError, world.sfn.exceptions.TaskDoesNotExist, world.sfn.exceptions.InvalidToken, world.sfn.exceptions.TaskTimedOut):
                pass  # The request or the wait itself failed (a fault in it), so there was nothing to answer.
        return world.wait(execution)


def _no_endpoint_but_the_other_modes(world: DeployerWorld) -> None:
    """The environment's config has just switched serving modes: only the other mode's endpoint serves."""
    _no_endpoint(world)
    world.other_mode_serving()


def _released_beside_the_other_modes(world: DeployerWorld) -> None:
    """Released here while the other mode's endpoint is still there (its retirement failed before)."""
    _released(world)
    world.other_mode_serving()


def _switched_while_the_other_mode_is_busy(world: DeployerWorld) -> None:
    _no_endpoint(world)
    world.other_mode_busy()


def _released_beside_the_other_modes_busy_endpoint(world: DeployerWorld) -> None:
    _released(world)
    world.other_mode_busy()


# How the scenarios end.
RELEASED: Outcome = ("SUCCEEDED", None)
ROLLED_BACK: Outcome = ("FAILED", "CanaryRolledBack")
ROLLBACK_FAILED: Outcome = ("FAILED", "RollbackFailed")
NOT_CREATED: Outcome = ("FAILED", "EndpointCreationFailed")
REFUSED: Outcome = ("FAILED", "DeploymentFailed")


@dataclass(frozen=True)
class Scenario:
    name: str
    template: str
    prepare: Callable[[DeployerWorld], None]
    act: Callable[[DeployerWorld], Execution]
    ends: Outcome

    def __str__(self) -> str:
        return self.name

    @property
    def family(self) -> str:
        return _family(self.template)


def _family(template: str) -> str:
    """The serverless deployers share state names with the instance ones, but not their tasks or handlers:
    each family's states are entered, and failed, by its own scenarios."""
    return "serverless" if "serverless" in template else "instances"


def _deploy(world: DeployerWorld) -> Execution:
    return world.deploy(world.register())


def _unreadable_package(world: DeployerWorld) -> Execution:
    return world.deploy(f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/999")


SCENARIOS = [
    Scenario("first release", "variants_template", _no_endpoint, _deploy, RELEASED),
    Scenario("rollout", "variants_template", _released, _deploy, RELEASED),
    # The third release is the first with a model older than the previous release to delete.
    Scenario("third release", "variants_template", _released, lambda world: (_deploy(world), _deploy(world))[1], RELEASED),
    Scenario("rollback on an alarm", "variants_template", _released, _rollback_on_alarm, ROLLED_BACK),
    Scenario("first release not recorded", "variants_template", _unrecordable(_no_endpoint), _deploy, RELEASED),
    Scenario("rollout after an execution that left its lock", "variants_template", _released_with_a_stale_lock, _deploy, RELEASED),
    Scenario("rollout not recorded", "variants_template", _unrecordable(_released), _deploy, RELEASED),
    Scenario("failed first release", "variants_template", _no_endpoint, _failed_first_release, NOT_CREATED),
    Scenario("refused rollback", "variants_template", _released, _refused_rollback, ROLLBACK_FAILED),
    Scenario("first release again after a failed one", "variants_template", _no_endpoint, _first_release_again_after_a_failed_one, RELEASED),
    Scenario("release after a failed first release", "variants_template", _failed_endpoint, _deploy, RELEASED),
    Scenario("unreadable package", "variants_template", _released, _unreadable_package, REFUSED),
    Scenario("same package after a rollback", "variants_template", _released, _same_package_after_a_rollback, RELEASED),
    Scenario("approved rollout", "approval_template", _released, _answered_approval, RELEASED),
    Scenario("rollout with enough traffic", "traffic_guard_template", _released, _served_traffic, RELEASED),
    Scenario("guarded rollout", "guardrails_template", _released, _deploy, RELEASED),
    Scenario("guarded rollout not recorded", "guardrails_template", _unrecordable(_released), _deploy, RELEASED),
    Scenario("rollback by SageMaker", "guardrails_template", _released, lambda world: (world.shim.next_update("silent_rollback"), world.deploy(world.register()))[1], ROLLED_BACK),
    Scenario("first release after switching to instances", "variants_template", _no_endpoint_but_the_other_modes, _deploy, RELEASED),
    Scenario("rollout beside the serverless endpoint", "variants_template", _released_beside_the_other_modes, _deploy, RELEASED),
    Scenario("switch to instances while the serverless endpoint is busy", "variants_template", _switched_while_the_other_mode_is_busy, _deploy, RELEASED),
    Scenario("rollout beside a busy serverless endpoint", "variants_template", _released_beside_the_other_modes_busy_endpoint, _deploy, RELEASED),
    Scenario("serverless first release", "serverless_template", _no_endpoint, _deploy, RELEASED),
    Scenario("serverless rollout", "serverless_template", _released, _deploy, RELEASED),
    Scenario("serverless first release not recorded", "serverless_template", _unrecordable(_no_endpoint), _deploy, RELEASED),
    Scenario("serverless rollout after an execution that left its lock", "serverless_template", _released_with_a_stale_lock, _deploy, RELEASED),
    Scenario("serverless rollout not recorded", "serverless_template", _unrecordable(_released), _deploy, RELEASED),
    Scenario("serverless third release", "serverless_template", _released, lambda world: (_deploy(world), _deploy(world))[1], RELEASED),
    Scenario("serverless rollback on an alarm", "serverless_template", _released, _rollback_on_alarm, ROLLED_BACK),
    Scenario("serverless failed first release", "serverless_template", _no_endpoint, _failed_first_release, NOT_CREATED),
    Scenario("serverless refused rollback", "serverless_template", _released, _refused_rollback, ROLLBACK_FAILED),
    Scenario("serverless first release again after a failed one", "serverless_template", _no_endpoint, _first_release_again_after_a_failed_one, RELEASED),
    Scenario("serverless release after a failed first release", "serverless_template", _failed_endpoint, _deploy, RELEASED),
    Scenario("serverless unreadable package", "serverless_template", _released, _unreadable_package, REFUSED),
    Scenario("serverless same package after a rollback", "serverless_template", _released, _same_package_after_a_rollback, RELEASED),
    Scenario("first release after switching to serverless", "serverless_template", _no_endpoint_but_the_other_modes, _deploy, RELEASED),
    Scenario("serverless rollout beside the instance endpoint", "serverless_template", _released_beside_the_other_modes, _deploy, RELEASED),
    Scenario("guarded serverless rollout", "guarded_serverless_template", _released, _served_and_approved, RELEASED),
    Scenario("switch to serverless while the instance endpoint is busy", "serverless_template", _switched_while_the_other_mode_is_busy, _deploy, RELEASED),
    Scenario("serverless rollout beside a busy instance endpoint", "serverless_template", _released_beside_the_other_modes_busy_endpoint, _deploy, RELEASED),
]


@pytest.fixture(scope="module")
def baselines(request) -> dict[str, ThrottledBaseline]:
    """Each scenario once, prepared without faults and acting with every task state's call throttled once, and
    every state that decides on its generic error and that no earlier scenario of its family entered failing
    transiently to the bound (those it enters are the ones it is to cover, see `covering`): how it ends, which
    task states it enters, the calls they make and what the faults met.

    The deployer's faults, retried, leave the task states entered as they are: a state a scenario entered only
    because of a fault would fail the refusal test, whose fault there would never be called."""
    found = {}
    entered_before: dict[str, set[str]] = {}
    for scenario in SCENARIOS:
        earlier = entered_before.setdefault(scenario.family, set())
        with deployer_world(request.getfixturevalue(scenario.template)) as world:
            scenario.prepare(world)
            tasks = sfn_harness.task_states(world.definition)
            uncovered = [state for state, task in tasks.items() if decides_on_cause(task) and state not in earlier]
            found[scenario.name] = throttled_baseline(tasks, lambda: scenario.act(world), world.retry_waits, world.state_waits, transient_at=uncovered)
        earlier.update(found[scenario.name].entered)
    return found


# -- every call the scenarios make, as AWS would authorize it --------------------------------------


@dataclass(frozen=True)
class DecidedCall:
    scenario: str
    call: sfn_harness.Call
    decision: Decision


@pytest.fixture(scope="module")
def call_decisions(request, baselines) -> dict[str, list[DecidedCall]]:
    """Template fixture name -> every call its scenarios made, decided against the policies of the
    environment it was synthesized in (one run of the evaluator per template)."""
    decided: dict[str, list[DecidedCall]] = {}
    for template in sorted({s.template for s in SCENARIOS}):
        policies = EnvironmentPolicies(request.getfixturevalue(template.replace("_template", "_synthesized")), "dev")
        names = WorldNames(policies, "deployment", REGION, bucket_keys=iam_calls.bucket_keys(policies))
        caller = state_machine_role(policies, "deployment", STATE_MACHINE)
        rows = [
            (scenario.name, call, request_)
            for scenario in SCENARIOS
            if scenario.template == template
            for call in baselines[scenario.name].calls
            for request_ in iam_calls.requests(call, caller, names)
        ]
        decisions = decide_each_once(policies, [request_ for _, _, request_ in rows])
        decided[template] = [DecidedCall(name, call, decision) for (name, call, _), decision in zip(rows, decisions, strict=True)]
    return decided


@pytest.mark.parametrize("template", sorted({s.template for s in SCENARIOS}))
def test_every_call_the_scenarios_make_is_allowed_to_the_deployers_role(baselines, call_decisions, template):
    decided = call_decisions[template]
    denied = [f"{d.scenario} / {d.call.state}: {d.decision.explain()}" for d in decided if not d.decision.allowed]
    tasks = {state for s in SCENARIOS if s.template == template for state in baselines[s.name].entered}

    assert {d.call.state for d in decided} == tasks, "a task state entered made no call that was decided"
    assert denied == []


def _first_release_calls(baselines, operation: str) -> list[sfn_harness.Call]:
    calls = [call for call in baselines["first release"].calls if call.operation == operation]
    assert calls, f"the first release made no {operation} call"
    return calls


def test_the_deployer_cannot_pass_the_model_role_to_another_service_or_pass_another_role(variants_synthesized, baselines):
    policies = EnvironmentPolicies(variants_synthesized, "dev")
    names = WorldNames(policies, "deployment", REGION)
    caller = state_machine_role(policies, "deployment", STATE_MACHINE)
    passes = [r for call in _first_release_calls(baselines, "create_model") for r in iam_calls.requests(call, caller, names) if r.action == "iam:PassRole"]
    assert passes, "creating the model passed no role"
    other_role = f"arn:aws:iam::{policies.account}:role/{policies.prefix}-other"
    requests = [
        *(Request(r.principal, r.action, r.resource, {"iam:PassedToService": service}) for r in passes for service in ("lambda.amazonaws.com", "ec2.amazonaws.com")),
        *(Request(r.principal, r.action, other_role, r.context) for r in passes),
    ]

    allowed = [d.explain() for d in policies.decide(requests) if d.allowed or d.result == "Error"]

    assert allowed == []


def test_the_deployer_cannot_grant_the_key_for_anything_but_an_aws_resource(variants_synthesized, baselines):
    policies = EnvironmentPolicies(variants_synthesized, "dev")
    names = WorldNames(policies, "deployment", REGION)
    caller = state_machine_role(policies, "deployment", STATE_MACHINE)
    grants = [
        r
        for call in _first_release_calls(baselines, "create_endpoint_config")
        for r in iam_calls.requests(call, caller, names)
        if r.action == "kms:CreateGrant"
    ]
    assert grants, "the endpoint config was created without the key"
    requests = [Request(r.principal, r.action, r.resource, {**r.context, "kms:GrantIsForAWSResource": "false"}) for r in grants]

    assert [d.explain() for d in policies.decide(requests) if d.allowed or d.result == "Error"] == []


def test_the_deployer_cannot_create_or_delete_models_and_configs_outside_its_prefixes(variants_synthesized, baselines):
    policies = EnvironmentPolicies(variants_synthesized, "dev")
    names = WorldNames(policies, "deployment", REGION)
    caller = state_machine_role(policies, "deployment", STATE_MACHINE)
    own = [
        r
        for operation in ("create_model", "create_endpoint_config", "create_endpoint")
        for call in _first_release_calls(baselines, operation)
        for r in iam_calls.requests(call, caller, names)
        if r.action.startswith("sagemaker:")
    ]
    elsewhere = [Request(r.principal, r.action, r.resource.replace(f"/{policies.prefix}-", "/other-"), r.context) for r in own]
    elsewhere += [
        Request(r.principal, r.action.replace("Create", "Delete"), r.resource, r.context)
        for r in elsewhere
        if r.action in ("sagemaker:CreateModel", "sagemaker:CreateEndpointConfig")
    ]
    assert all(r.resource != o.resource for r, o in zip(own, elsewhere, strict=False)), "a resource name outside the prefix was not made"

    decided = policies.decide(own + elsewhere)
    allowed_elsewhere = [d.explain() for d in decided[len(own):] if d.allowed or d.result == "Error"]

    assert [d.explain() for d in decided[: len(own)] if not d.allowed] == [], "the deployer's own calls must be allowed"
    assert allowed_elsewhere == []


@pytest.mark.parametrize("template", sorted({s.template for s in SCENARIOS}))
def test_every_task_state_is_entered_by_a_scenario(request, baselines, template):
    with deployer_world(request.getfixturevalue(template)) as world:
        states = set(sfn_harness.task_states(world.definition))
    entered = {state for s in SCENARIOS if s.family == _family(template) for state in baselines[s.name].entered}

    assert states - entered == set(), "task states no scenario reaches: add a scenario that does"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_a_call_throttled_once_is_retried_and_changes_nothing(baselines, scenario):
    run = baselines[scenario.name]
    assert_throttles_changed_nothing(run.execution, scenario.ends, run.tasks, run.throttles, run.retry_waits, run.state_waits)


def _fault_each_state(request, baselines, scenario, subtests, fault_of: Callable[[dict], Fault | None], check: Callable[..., None]) -> None:
    """For each task state `scenario` is the one to cover (see `covering`) whose task `fault_of` gives a fault:
    the scenario afresh, that fault at that state, then `check(world, execution, state, task, fault, before, told)`,
    each state a subtest."""
    states = covering((s.name for s in SCENARIOS if s.family == scenario.family), baselines)[scenario.name]
    with deployer_world(request.getfixturevalue(scenario.template)) as world, injected_faults() as faults:
        tasks = sfn_harness.task_states(world.definition)
        faulted = {state: fault for state in states if (fault := fault_of(tasks[state])) is not None}
        if not faulted:
            pytest.skip(f"every state {scenario.name!r} would fault here is faulted in an earlier scenario")
        for state, fault in faulted.items():
            with subtests.test(state=state):
                scenario.prepare(world)
                before = _endpoint_state(world)
                told = len(world.notifications())
                faults.clear()
                world.state_waits.clear()
                faults[state] = fault

                execution = scenario.act(world)

                assert fault.calls, f"the scenario never called {state!r}: the fault checked nothing"
                check(world, execution, state, tasks[state], fault, before, world.notifications()[told:])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_a_call_that_fails_for_good_ends_as_its_handler_promises(request, baselines, scenario, subtests):
    def check(world, execution, state, task, fault, before, told):
        if decides_on_cause(task):
            # A refusal under the service's generic error name is not retried.
            assert (fault.calls, waits_before_retrying(world.state_waits, state)) == (1, [])
        if state == RELEASE_LOCK:
            assert (execution.status, execution.error) == scenario.ends, "a lock that could not be released changed how the deployment ended"
            return
        _assert_promise_kept(world, execution, state, task, before, told)

    _fault_each_state(request, baselines, scenario, subtests, lambda task: refused_for_good(service_of(task)), check)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_calls_failing_transiently_to_the_bound_are_retried_with_the_whole_backoff_and_change_nothing(baselines, scenario):
    # Each state that decides on its generic error, in the one scenario that covers it, all in its baseline run.
    run = baselines[scenario.name]
    states = covering((s.name for s in SCENARIOS if s.family == scenario.family), baselines)[scenario.name]
    deciding = [state for state in states if decides_on_cause(run.tasks[state])]
    if not deciding:
        pytest.skip(f"every state {scenario.name!r} would fault here is faulted in an earlier scenario")

    assert_retried_to_the_bound_with_the_whole_backoff(run.execution, scenario.ends, {state: run.transients[state] for state in deciding}, run.state_waits)


def _endpoint_state(world: DeployerWorld) -> dict | None:
    if not world.sagemaker.list_endpoints(NameContains=world.endpoint)["Endpoints"]:
        return None
    return {"models": world.live_models(), "scaled": world.scaled_variants()}


def _assert_promise_kept(world: DeployerWorld, execution: Execution, state: str, task: dict, before: dict | None, told: list[str]) -> None:
    announcing = service_of(task) == "events" and "waitForTaskToken" not in task["Resource"]
    if state in _clean_up_states(world.definition):
        assert execution.status == "SUCCEEDED", "a failed clean-up must not fail the release"
        return
    if state.startswith(RECORD):
        assert execution.status == "SUCCEEDED", "a release record that cannot be written must not fail the release"
        assert [subject for subject in told if subject.endswith("not recorded for promotion")], f"nobody was told the release is not recorded: {told}"
        return
    if state.startswith(RETIREMENT):
        assert execution.status == "SUCCEEDED", "failing to retire the other mode's endpoint must not fail the release"
        if not announcing:
            assert f"{world.endpoint}: version {_version(world)} serves, but the old endpoint is still there" in told, told
        return
    # A serverless variant has no autoscaling; a variant on instances has it, whatever happened.
    def scaled(models: dict) -> dict:
        return {} if world.serverless else {variant: ["SageMakerEndpointInvocationScalingPolicy"] for variant in models}

    assert execution.status == "FAILED"
    if announcing:
        # The message is what failed; the execution ends with the error the announcement's catch leads to,
        # and the endpoint must still be in a state someone can live with.
        assert execution.error == error_caught_at(world.definition, state), execution.cause
    else:
        assert [subject for subject in told if _tells_of_a_failure(world, subject)], f"nobody was told that {state!r} failed: {told}"
    after = _endpoint_state(world)
    if execution.error == "DeploymentFailed":
        assert after == before, "a deployment that failed before changing anything changed the endpoint"
    elif execution.error == "CanaryRolledBack":
        assert after is not None and after["models"] == before["models"], "the old model is not serving"
        assert after["scaled"] == scaled(after["models"])
    elif execution.error == "AnnouncementFailed":
        assert after is not None and after["scaled"] == scaled(after["models"]), "the live variant is not scaled as its mode scales"
    else:
        assert execution.error in ("EndpointCreationFailed", "RollbackFailed"), f"uncaught failure: {execution.error}: {execution.cause}"
        assert announcing or [subject for subject in told if _tells_of_a_failure(world, subject)], told


def _version(world: DeployerWorld) -> int:
    """The newest version registered: the one the scenario released."""
    return max(p["ModelPackageVersion"] for p in world.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"])


def _tells_of_a_failure(world: DeployerWorld, subject: str) -> bool:
    """A message about this endpoint that says a deployment did not go through (not a release or a promotion)."""
    return subject.startswith(f"{world.endpoint}: ") and (" failed" in subject or " rolled back" in subject)


def _clean_up_states(definition: dict) -> set[str]:
    return set(sfn_harness.task_states({"States": {CLEAN_UP: definition["States"][CLEAN_UP]}})) if CLEAN_UP in definition["States"] else set()
