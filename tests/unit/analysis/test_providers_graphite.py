from __future__ import annotations

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.graphite import reduce_render, render_params


def test_a_flagger_query_string_becomes_the_render_parameters_with_json() -> None:
    query = """
        target=summarize(
          asPercent(sumSeries(app.web.errors), sumSeries(app.web.requests)),
          '1min', 'avg')&from=-5min
    """
    assert render_params(query) == [
        ("target", "summarize(asPercent(sumSeries(app.web.errors),sumSeries(app.web.requests)),'1min','avg')"),
        ("from", "-5min"), ("format", "json")]


def test_a_bare_target_is_one_target_and_quoted_spaces_stay() -> None:
    assert render_params("alias(app.web.latency, 'web latency')") == [
        ("target", "alias(app.web.latency,'web latency')"), ("format", "json")]


def test_the_query_cannot_ask_for_another_format() -> None:
    assert render_params("target=a.b&format=csv&target=c.d") == [
        ("target", "a.b"), ("target", "c.d"), ("format", "json")]


def _series(target: str, *values: float | None) -> dict[str, object]:
    return {"target": target, "datapoints": [[v, 1700000000 + i] for i, v in enumerate(values)]}


def test_the_answer_is_the_last_non_null_datapoint() -> None:
    assert reduce_render([_series("a.b", 1.0, 2.5, None, None)]) == QueryResult(Outcome.VALUE, value=2.5)


def test_no_series_and_only_nulls_are_no_data_with_different_messages() -> None:
    assert reduce_render([]) == QueryResult(Outcome.NO_DATA, message="the query matched no series")
    assert reduce_render([_series("a.b", None, None)]) == QueryResult(
        Outcome.NO_DATA, message="the series a.b has only null datapoints")


def test_several_series_say_how_to_aggregate() -> None:
    result = reduce_render([_series("app.web.errors", 1.0), _series("app.db.errors", 2.0)])
    assert result == QueryResult(Outcome.SEVERAL_SERIES, message="the query returned 2 series (app.web.errors, "
                                                                 "app.db.errors); aggregate them to one, with "
                                                                 "sumSeries() say")
