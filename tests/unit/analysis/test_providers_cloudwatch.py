from __future__ import annotations

import json
import time

import pytest

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.cloudwatch import CloudWatchProvider, endpoint, reduce_metric_data, request_body
from analysis.providers.config import ProviderConfig
from analysis.providers.registry import provider_for
from analysis.providers.transport import HttpClient, QueryFailed
from tests.httpfakes import Answer, FakeServer

FLAGGER_QUERY = json.dumps([
    {"Id": "e1", "Expression": "m1 / m2", "Label": "ErrorRate"},
    {"Id": "m1", "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": "MyKubernetesCluster", "MetricName": "ErrorCount",
                   "Dimensions": [{"Name": "appName", "Value": "podinfo"}]},
        "Period": 60, "Stat": "Sum", "Unit": "Count"}},
    {"Id": "m2", "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": "MyKubernetesCluster", "MetricName": "RequestCount",
                   "Dimensions": [{"Name": "appName", "Value": "podinfo"}]},
        "Period": 60, "Stat": "Sum", "Unit": "Count"}},
])


def test_a_flagger_query_becomes_a_get_metric_data_request_over_the_window() -> None:
    body = request_body(FLAGGER_QUERY, start=1700000000.9, end=1700000300.2)
    assert body == {"MetricDataQueries": json.loads(FLAGGER_QUERY), "StartTime": 1700000000, "EndTime": 1700000300,
                    "ScanBy": "TimestampDescending"}


@pytest.mark.parametrize("query", ["not json", '{"Id": "m1"}', "[]", '["m1"]'])
def test_a_query_that_is_not_a_list_of_metric_data_queries_is_refused(query: str) -> None:
    with pytest.raises(QueryFailed) as failure:
        request_body(query, start=0, end=1)
    assert failure.value.outcome is Outcome.REJECTED


def test_the_answer_is_the_latest_value_by_timestamp() -> None:
    body = {"MetricDataResults": [{"Id": "e1", "Label": "ErrorRate", "StatusCode": "Complete",
                                   "Timestamps": [1700000060, 1700000120, 1700000000], "Values": [0.2, 0.5, 0.1]}],
            "Messages": []}
    assert reduce_metric_data(body) == QueryResult(Outcome.VALUE, value=0.5)


def test_no_result_and_no_datapoints_are_no_data() -> None:
    assert reduce_metric_data({"MetricDataResults": []}).outcome is Outcome.NO_DATA
    empty = {"MetricDataResults": [{"Id": "e1", "StatusCode": "Complete", "Timestamps": [], "Values": []}]}
    assert reduce_metric_data(empty) == QueryResult(Outcome.NO_DATA, message="e1 has no datapoints in the window")


def test_several_returned_results_say_to_turn_off_return_data() -> None:
    body = {"MetricDataResults": [{"Id": "m1", "Values": [1.0]}, {"Id": "m2", "Values": [2.0]}]}
    assert reduce_metric_data(body) == QueryResult(
        Outcome.SEVERAL_SERIES, message="the query returned 2 results (m1, m2); set ReturnData to false on all but one")


def test_an_internal_error_status_is_unavailable_and_forbidden_is_refused() -> None:
    for status, outcome in (("InternalError", Outcome.UNAVAILABLE), ("Forbidden", Outcome.REJECTED)):
        body = {"MetricDataResults": [{"Id": "e1", "StatusCode": status, "Values": [],
                                       "Messages": [{"Code": "x", "Value": "try later"}]}]}
        with pytest.raises(QueryFailed) as failure:
            reduce_metric_data(body)
        assert failure.value.outcome is outcome
        assert failure.value.detail == f"e1: {status}: try later"


def test_the_endpoint_follows_the_region() -> None:
    assert endpoint("eu-west-1") == "https://monitoring.eu-west-1.amazonaws.com"
    assert endpoint("cn-northwest-1") == "https://monitoring.cn-northwest-1.amazonaws.com.cn"


KEYS = {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "secret"}
EMPTY = {"MetricDataResults": [{"Id": "e1", "StatusCode": "Complete", "Timestamps": [], "Values": []}]}


def test_the_query_looks_back_the_configs_window_which_the_controller_sets_to_ten_intervals() -> None:
    with FakeServer(lambda seen: Answer(body=EMPTY)) as api:
        before = int(time.time())
        for config in (ProviderConfig("cloudwatch", api.url, region="eu-west-1", credentials=KEYS, window=600),
                       ProviderConfig("cloudwatch", api.url, region="eu-west-1", credentials=KEYS)):
            provider_for(config).query(FLAGGER_QUERY)
        after = int(time.time())

    bodies = [json.loads(seen.body) for seen in api.seen]
    assert [body["EndTime"] - body["StartTime"] for body in bodies] == [600, 300]  # then the config's default
    assert all(before <= body["EndTime"] <= after for body in bodies)


def test_start_time_is_now_minus_the_window() -> None:
    with FakeServer(lambda seen: Answer(body=EMPTY)) as api:
        CloudWatchProvider(api.url, http=HttpClient(), window=600, wall_clock=lambda: 1700000600.0).query(FLAGGER_QUERY)
    body = json.loads(api.seen[0].body)
    assert (body["StartTime"], body["EndTime"]) == (1700000000, 1700000600)
