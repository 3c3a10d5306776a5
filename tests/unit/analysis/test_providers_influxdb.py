from __future__ import annotations

import pytest

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.influxdb import InfluxDBProvider, reduce_statements
from analysis.providers.transport import QueryFailed


def _statement(*series: dict[str, object]) -> dict[str, object]:
    return {"statement_id": 0, "series": list(series)}


def _series(values: list[list[object]], columns: tuple[str, ...] = ("time", "mean"), **tags: str) -> dict[str, object]:
    return {"name": "latency", "tags": tags, "columns": list(columns), "values": values}


def test_the_answer_is_the_first_value_of_the_one_series() -> None:
    result = reduce_statements([_statement(_series([[1700000000, 12.5], [1700000060, 14.0]]))])
    assert result == QueryResult(Outcome.VALUE, value=12.5)


def test_no_series_is_no_data_and_a_null_value_too() -> None:
    assert reduce_statements([{"statement_id": 0}]) == QueryResult(Outcome.NO_DATA,
                                                                   message="the query returned no series")
    assert reduce_statements([_statement(_series([[1700000000, None]]))]).outcome is Outcome.NO_DATA


def test_several_series_name_their_tags() -> None:
    result = reduce_statements([_statement(_series([[0, 1]], app="web"), _series([[0, 2]], app="db"))])
    assert result == QueryResult(Outcome.SEVERAL_SERIES, message="the query returned 2 series (latency{app=web}, "
                                                                 "latency{app=db}); aggregate them to one (drop "
                                                                 "its GROUP BY tags)")


def test_several_fields_or_statements_are_not_one_value() -> None:
    fields = reduce_statements([_statement(_series([[0, 1, 2]], columns=("time", "mean", "max")))])
    assert fields == QueryResult(Outcome.SEVERAL_SERIES, message="the query selects 2 fields (mean, max); select one")
    statements = reduce_statements([_statement(), _statement()])
    assert statements.message == "the query has 2 statements; send one"


def test_a_string_field_is_not_a_number() -> None:
    result = reduce_statements([_statement(_series([[0, "ok"]]))])
    assert result == QueryResult(Outcome.NOT_A_NUMBER, message="the query returned 'ok', not a number")


def test_a_statement_error_is_a_refusal() -> None:
    with pytest.raises(QueryFailed) as failure:
        reduce_statements([{"statement_id": 0, "error": "database not found: nope"}])
    assert failure.value.outcome is Outcome.REJECTED
    assert failure.value.message("InfluxDB at http://i") == "InfluxDB at http://i refused the query: " \
                                                            "database not found: nope"


def test_the_database_rides_on_the_address_and_stays_out_of_the_url() -> None:
    provider = InfluxDBProvider("http://influxdb:8086/?db=telegraf&rp=week")
    assert provider.url == "http://influxdb:8086"
