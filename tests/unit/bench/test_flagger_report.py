from __future__ import annotations

from pathlib import Path

from bench.flagger.report import (
    MB,
    Measured,
    Record,
    SizeResult,
    document,
    growth,
    kinds,
    load,
    plot,
    rows,
    save,
    shard_table,
    table,
)


def measured(**overrides: object) -> Measured:
    base: dict[str, object] = {
        "size": 10, "interval_seconds": 10, "idle_seconds": 60, "idle_requests": 540, "idle_cpu_seconds": 0.24,
        "release_seconds": 80, "release_requests": 1090, "release_cpu_seconds": 0.8,
        "rss_idle_bytes": 57 * MB, "rss_peak_bytes": 64 * MB, "reactions": [7.0, 8.0, 9.5], "release_times": [70, 80],
        "idle_kinds": {"get deployments": 500, "list canaries": 40},
        "release_kinds": {"get deployments": 1000, "update canaries/status": 90}}
    return Measured(**{**base, **overrides})  # type: ignore[arg-type]


def result() -> SizeResult:
    return SizeResult(size=10, nodes=2, minutes=3.5, other_clients={"OpenAPI-Generator/37.0.2/python": 12},
                      measured={"flagger": measured(),
                                "ours": measured(idle_requests=3, idle_cpu_seconds=0.42, release_requests=210,
                                                 rss_idle_bytes=160 * MB, rss_peak_bytes=170 * MB,
                                                 reactions=[0.5, 0.7, 0.9], lag_p50=0.004, lag_p99=0.05)})


def test_figures_are_per_canary_and_per_tick_of_the_interval() -> None:
    flagger = measured()
    assert flagger.idle_requests_per_tick == 9.0  # 540 requests / 10 canaries / 6 ticks
    assert flagger.idle_cpu_ms_per_tick == 4.0  # 240 ms / 10 canaries / 6 ticks
    assert flagger.release_requests_per_canary == 109
    assert flagger.release_cpu_ms_per_tick == 10.0  # 800 ms / 10 canaries / 8 ticks
    assert flagger.release_cpu_ms_per_canary == 80.0  # 800 ms / 10 canaries


def test_a_release_that_ends_sooner_costs_more_per_tick_for_the_same_work_per_canary() -> None:
    slow, fast = measured(release_seconds=80), measured(release_seconds=40)
    assert fast.release_cpu_ms_per_tick == 2 * slow.release_cpu_ms_per_tick
    assert fast.release_cpu_ms_per_canary == slow.release_cpu_ms_per_canary
    found = {name: ratio for name, _, _, ratio in rows(SizeResult(size=10, nodes=2, minutes=1,
                                                                  measured={"flagger": slow, "ours": fast}))}
    assert (found["CPU ms per canary per tick, release"], found["CPU ms per canary, one release"]) == ("2.00x", "1.00x")


def test_the_table_sets_both_controllers_side_by_side_with_their_ratio() -> None:
    found = {name: (flagger, ours, ratio) for name, flagger, ours, ratio in rows(result())}
    assert found["API requests per canary per tick, idle"] == ("9.00", "0.05", "0.01x")
    assert found["CPU ms per canary per tick, idle"] == ("4.00", "7.00", "1.75x")
    assert found["RSS MB, idle"] == ("57", "160", "2.81x")
    assert found["tick lag p50 / p99 ms, idle (ours' histogram)"][1] == "4 / 50"
    assert found["reaction s, change to Progressing, p50 / max"][:2] == ("8.0 / 9.5", "0.7 / 0.9")
    assert found["releases failed / unfinished"][:2] == ("0 / 0", "0 / 0")


def test_missing_figures_read_n_a() -> None:
    empty = SizeResult(size=10, nodes=2, minutes=1, measured={"flagger": measured(reactions=[], idle_seconds=0),
                                                              "ours": measured()})
    found = {name: (flagger, ours) for name, flagger, ours, _ in rows(empty)}
    assert found["reaction s, change to Progressing, p50 / max"][0] == "n/a"
    assert found["API requests per canary per tick, idle"][0] == "n/a"
    assert found["tick lag p50 / p99 ms, idle (ours' histogram)"][1] == "n/a"


def test_a_table_is_markdown_with_a_heading_that_names_the_size() -> None:
    text = table(result())
    assert text.splitlines()[0].startswith("### N = 10 (2 kwok nodes, interval 10 s, idle window 60 s, 3.5 min)")
    assert "| API requests per canary per tick, idle | 9.00 | 0.05 | 0.01x |" in text.splitlines()


def test_requests_by_kind_list_each_controller_and_window_and_the_other_clients() -> None:
    lines = kinds(result()).splitlines()
    assert "- Flagger, idle: get deployments 500, list canaries 40" in lines
    assert lines[-1] == "- other clients, idle window: OpenAPI-Generator/37.0.2/python 12"
    assert "- Flagger, idle: get deployments 500, others 40" in kinds(result(), top=1).splitlines()


def test_the_document_holds_the_record_the_tables_and_the_plot(tmp_path: Path) -> None:
    record = Record(date="2026-11-29", commit="abc1234", machine="2 cores", versions="Flagger v1.36.1",
                    command="make bench-flagger SIZES=10,100", plot="images/benchmarks.png")
    text = document([result()], record, ["a note"])
    assert "at commit abc1234" in text
    assert "```sh\nmake bench-flagger SIZES=10,100\n```" in text
    assert "### N = 10" in text
    assert "![CPU and memory against N](images/benchmarks.png)" in text
    assert "- a note" in text
    picture = tmp_path / "images" / "plot.png"
    plot([result()], picture)
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_requests_of_a_controller_not_found_by_user_agent_read_n_a() -> None:
    unseen = SizeResult(size=10, nodes=2, minutes=1, measured={
        "flagger": measured(), "ours": measured(idle_requests=None, release_requests=None)})
    found = {name: (flagger, ours, ratio) for name, flagger, ours, ratio in rows(unseen)}
    assert found["API requests per canary per tick, idle"] == ("9.00", "n/a", "")
    assert found["API requests per canary, one release"] == ("109.0", "n/a", "")


def test_a_kept_result_reads_back_the_same(tmp_path: Path) -> None:
    kept = tmp_path / "n10.json"
    original = SizeResult(**{**result().__dict__, "commit": "abc1234 (with uncommitted changes)"})
    save(original, kept)
    again = load(kept)
    assert again == original
    assert table(again) == table(original)
    assert "commit abc1234 (with uncommitted changes))" in table(again).splitlines()[0]


def sharded() -> SizeResult:
    base = result()
    shards = {"s0": measured(size=5, idle_cpu_seconds=0.1, lag_p50=0.002, lag_p99=0.02, release_lag_p50=0.003,
                             release_lag_p99=0.09, rss_idle_bytes=120 * MB),
              "s1": measured(size=5, failed=1)}
    return SizeResult(size=base.size, nodes=base.nodes, minutes=base.minutes, measured=base.measured, shards=shards)


def test_the_shard_table_sets_each_shard_beside_the_single_process() -> None:
    lines = shard_table(sharded()).splitlines()
    assert lines[0].startswith("#### N = 10 across 2 shards")
    assert lines[2] == "| measure | one process | shard s0 | shard s1 |"
    assert "| canaries | 10 | 5 | 5 |" in lines
    assert "| CPU ms per canary per tick, idle | 7.00 | 3.33 | 8.00 |" in lines  # 100 ms / 5 canaries / 6 ticks
    assert "| tick lag p50 / p99 ms, release | n/a | 3 / 90 | n/a |" in lines
    assert "| releases failed / unfinished | 0 / 0 | 0 / 0 | 1 / 0 |" in lines
    assert shard_table(result()) == ""


def test_a_sharded_result_is_kept_and_loaded_with_its_shards(tmp_path: Path) -> None:
    path = tmp_path / "n10.json"
    save(sharded(), path)
    assert load(path) == sharded()
    assert load(path).shards["s0"].release_lag_p99 == 0.09


def test_memory_per_canary_is_the_idle_rss_added_from_one_size_to_the_next() -> None:
    small = result()
    big = SizeResult(size=100, nodes=4, minutes=5, measured={
        "flagger": measured(size=100, rss_idle_bytes=57 * MB + 90 * 20 * 1024),
        "ours": measured(size=100, rss_idle_bytes=160 * MB + 90 * 50 * 1024)})
    assert growth([big, small]) == ["- N = 10 to 100: Flagger 20.0 KiB, ours 50.0 KiB per canary"]
    text = document([small, big], Record("d", "c", "m", "v", "cmd", "p.png"))
    assert "- N = 10 to 100: Flagger 20.0 KiB, ours 50.0 KiB per canary" in text
