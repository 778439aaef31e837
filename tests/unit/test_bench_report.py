"""bench/report.py: every ``[label] name: value`` figure a bench prints lands in the table."""

from __future__ import annotations

from bench import report

OUT = """\
broker: embedded kafka; partitions: 4
[fixed 50/s] warning_p50_ms: 502.9
[fixed/adaptive 50/s] in_kafka_p50_ms: 92.8 / 35.5 = 2.61
end_to_end_readings_per_s: 48123
# a comment: 12
[kafka] envelopes: 100 (500 readings/envelope); cpu
engine_all_readings_per_s: nan
rule_packs_all: rain,wind
"""


def test_figure_lines_are_parsed_with_label_name_and_value():
    rows = report.parse(OUT)
    assert ("fixed 50/s", "warning_p50_ms", "502.9") in rows
    assert ("fixed/adaptive 50/s", "in_kafka_p50_ms", "92.8 / 35.5 = 2.61") in rows
    assert ("", "end_to_end_readings_per_s", "48123") in rows
    assert ("kafka", "envelopes", "100 (500 readings/envelope); cpu") in rows
    assert ("", "engine_all_readings_per_s", "nan") in rows
    names = [r[1] for r in rows]
    assert "a comment" not in names and "rule_packs_all" not in names  # not a number
    assert "broker" not in names


def test_the_table_has_a_row_per_figure_and_says_which_bench_failed():
    ok = report.Step("latency_rate", ("bench/latency_rate.py",), "latency")
    bad = report.Step("throughput", ("bench/throughput.py",), "rate")
    text = report.markdown([(ok, report.parse(OUT), "ok", 12.0),
                            (bad, [], "failed (exit 1)", 3.0)], ["header"])
    assert "| latency_rate | fixed/adaptive 50/s | in_kafka_p50_ms | 92.8 / 35.5 = 2.61 |" in text
    assert "| throughput | | **failed (exit 1)** | see throughput.log |" in text
    assert text.count("| latency_rate |") == len(report.parse(OUT)) + 1  # + its summary row


def test_every_quick_step_names_a_bench_script_that_exists():
    for step in report.steps("tansu"):
        assert (report.ROOT / step.args[0]).is_file(), step.name
