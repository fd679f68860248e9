"""The deployer world itself: what it creates behind moto's API is what the API would have created."""

from __future__ import annotations

from tests.behaviour.deployer_world import deployer_world


def _described(world) -> list[dict]:
    alarms = world.cloudwatch.describe_alarms()["MetricAlarms"]
    moments = ("AlarmConfigurationUpdatedTimestamp", "StateUpdatedTimestamp")
    return sorted(({k: v for k, v in alarm.items() if k not in moments} for alarm in alarms), key=lambda alarm: alarm["AlarmName"])


def test_the_worlds_alarms_are_those_put_metric_alarm_makes_of_the_template(variants_template):
    properties = [
        r["Properties"] for r in variants_template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == "AWS/SageMaker"
    ]
    with deployer_world(variants_template) as world:
        created = _described(world)
        world.cloudwatch.delete_alarms(AlarmNames=[alarm["AlarmName"] for alarm in created])
        for alarm in properties:
            world.cloudwatch.put_metric_alarm(
                **{key: alarm[key] for key in ("AlarmName", "Namespace", "MetricName", "Dimensions", "Statistic", "Period", "EvaluationPeriods", "Threshold", "ComparisonOperator", "TreatMissingData")}
            )

        assert _described(world) == created
    assert len(created) == len(properties) > 0
