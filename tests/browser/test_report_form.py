"""The report-back (回报) form and the period report page in a browser (issue 14): Debian's
headless Chromium driven by playwright against `yujing run` (the `duty` fixture).

The warm-up warning is an orange rain warning at 麻涌镇: its page shows 待回报 and the open
report form; the officer fills it in, the report appears on the timeline in Chinese and the
mark goes; the board's 待回报 list no longer names it; the report page counts its people.
"""

from __future__ import annotations

from tests.browser.test_console import login, shot


def test_report_form_on_the_warning_page_and_the_report_page(duty, browser):
    run, _, warm = duty
    base, iid = run.http, warm["incident"]
    assert warm["grade"] == 3                                    # orange: a report is due
    page = login(browser, base, "a1")
    page.wait_for_selector(f'#due-list li[data-incident="{iid}"]', timeout=10_000)
    page.goto(f"{base}/console/warnings/{iid}")
    page.wait_for_selector("#report-due:not([hidden])", timeout=10_000)
    assert page.get_attribute("#report-box", "open") is not None   # due: the form is open
    page.select_option("#f-report select[name=status]", "done")
    page.fill("#f-report textarea[name=measures]", "疏通排水口，转移低洼住户")
    page.fill("#f-report input[name=evacuated]", "17")
    page.select_option("#f-report select[name=stopped]", "no")
    page.fill("#f-report textarea[name=photos]", "javascript:alert(1)")
    page.click("#btn-report")
    page.wait_for_selector("#act-msg.err", timeout=5_000)
    assert "http" in page.inner_text("#act-msg")                # refused, with the reason
    page.fill("#f-report textarea[name=photos]", "https://img.example/my/1.jpg")
    page.click("#btn-report")
    entry = page.wait_for_selector('#timeline li[data-kind="report"]', timeout=15_000)
    assert ("回报（已处置）；措施：疏通排水口，转移低洼住户；转移17人，撤离0人；未停产；照片1张"
            in entry.inner_text())
    page.wait_for_selector("#report-due", state="hidden", timeout=10_000)
    shot(page, "warning-report")
    page.goto(f"{base}/console/")
    page.wait_for_selector("#board tbody tr", timeout=10_000)
    assert page.query_selector(f'#due-list li[data-incident="{iid}"]') is None
    page.goto(f"{base}/console/report?by=town")
    row = page.wait_for_selector("#report-table tbody tr:has-text('麻涌镇')", timeout=5_000)
    cells = row.inner_text().split("\t")
    assert cells[0] == "麻涌镇" and "17" in cells
    shot(page, "report")
    assert page.errors == []
