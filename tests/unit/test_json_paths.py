"""The intrinsic functions json_paths writes out render as aws-cdk-lib's own helpers render them."""

import aws_cdk as cdk
import pytest
from aws_cdk import aws_stepfunctions as sfn

from mlops_constructs.json_paths import number_at, states_format, states_math_add, string_at

TEMPLATES = [
    "plain {} text",
    "{}: {}",
    "it's {}",
    "a backslash \\ here, a last one \\",
    "escaped braces \\{ and \\} stay, {} is filled",
    "two apostrophes '' and a backslash before one \\'",
]


def rendered(parameters: dict) -> dict:
    stack = cdk.Stack(cdk.App())
    return sfn.Pass(stack, "State", parameters=parameters).to_state_json()["Parameters"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_states_format_renders_as_json_path_format_does(template):
    paths = ["$.error.Error", "$$.Execution.Id"][: template.count("{}")]
    ours = rendered({"reason.$": states_format(template, *paths)})
    theirs = rendered({"reason": sfn.JsonPath.format(template, *(string_at(path) for path in paths))})
    assert ours == theirs


def test_states_format_quotes_a_value_that_is_no_path_as_json_path_format_does():
    assert rendered({"id.$": states_format("endpoint/e/variant/{}", "blue")}) == rendered({"id": sfn.JsonPath.format("endpoint/e/variant/{}", "blue")})


def test_states_format_keeps_a_deploy_time_value_in_its_template_as_json_path_format_does():
    stack = cdk.Stack(cdk.App())
    bucket = cdk.Fn.ref("Bucket")
    ours = sfn.Pass(stack, "Ours", parameters={"uri.$": states_format(f"s3://{bucket}/{{}}", "$.key")}).to_state_json()["Parameters"]
    theirs = sfn.Pass(stack, "Theirs", parameters={"uri": sfn.JsonPath.format(f"s3://{bucket}/{{}}", string_at("$.key"))}).to_state_json()["Parameters"]
    assert stack.resolve(ours) == stack.resolve(theirs)


def test_states_format_refuses_a_path_token_for_a_value():
    with pytest.raises(ValueError, match="not tokens"):
        states_format("{}", string_at("$.a"))


def test_states_math_add_renders_as_json_path_math_add_does():
    ours = rendered({"count.$": states_math_add("$.polls.count", 1)})
    theirs = rendered({"count": sfn.JsonPath.math_add(number_at("$.polls.count"), 1)})
    assert ours == theirs
