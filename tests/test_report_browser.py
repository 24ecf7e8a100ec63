"""The report in a real headless browser (Debian's chromium, driven by Playwright): it loads with
no console error and no network request, the charts render, and injected markup stays text."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.report_run import IMG, SCRIPT, make_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _browser_or_skip() -> str:
    if CHROMIUM is None or not _has_playwright():
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium and Playwright (installed by .ci/run and the test extra)")
        pytest.skip("needs Debian's chromium (apt-get install chromium) and playwright")
    return CHROMIUM  # type: ignore[return-value]


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    executable = _browser_or_skip()
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOEVOL_HOME", str(tmp / "home"))
        run = make_run(tmp)
    page_path = run / "output" / "report.html"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        console: list[str] = []
        requests: list[str] = []
        dialogs: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        charts = {}
        for chart_id in ("lambda-chart", "step-failure-chart", "round-failure-chart", "length-chart",
                         "diversity-chart"):
            svg = page.locator(f"#{chart_id} svg")
            charts[chart_id] = (svg.bounding_box(), svg.screenshot())
        yield {
            "page_url": page_path.as_uri(), "console": console, "requests": requests, "dialogs": dialogs,
            "charts": charts, "body_text": page.inner_text("body"), "images": page.locator("img").count(),
            "scripts": page.locator("script").count(),
            "details": page.locator("details").count(),
        }
        browser.close()


def test_loads_without_console_errors_or_network_requests(loaded: dict[str, Any]) -> None:
    assert loaded["console"] == []
    assert loaded["requests"] == [loaded["page_url"]]  # the page itself, nothing else


def test_charts_render_at_the_expected_size_and_are_not_blank(loaded: dict[str, Any]) -> None:
    from io import BytesIO

    from PIL import Image

    for chart_id, (box, png) in loaded["charts"].items():
        assert box is not None, chart_id
        assert 600 <= box["width"] <= 740 and 250 <= box["height"] <= 340, (chart_id, box)
        image = Image.open(BytesIO(png)).convert("L")
        histogram = image.histogram()
        # Not blank: a real chart has many non-white pixels and more than a couple of grey levels.
        non_white = sum(histogram[:250])
        assert non_white > 0.01 * image.width * image.height, chart_id
        assert sum(1 for count in histogram if count) > 10, chart_id


def test_injection_strings_stay_text_and_no_script_runs(loaded: dict[str, Any]) -> None:
    assert SCRIPT in loaded["body_text"] and IMG in loaded["body_text"]
    assert loaded["images"] == 0 and loaded["scripts"] == 0
    assert loaded["dialogs"] == []
    assert loaded["details"] > 5  # the expandable examples, feedback and diffs are there
