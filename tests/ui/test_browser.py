"""`curator explore` in a real headless Chromium (selenium + the system chromedriver).

Starts the explorer on the fixture run on a free localhost port, checks that the overview and the
flagged grid render with real thumbnails (img elements with a non-zero natural width), drives the
review by keyboard, the spot check, a rectangle dragged on the embedding map (Altair's interval
selection, which AppTest cannot do) with one bulk decision, and the duplicate-group gallery, and saves
screenshots in the test's tmp dir (their paths are printed). Skipped when Chromium is missing,
unless $CI is set, in which case a missing browser is a failure.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # repo root, for tests.fixtures_run
from tests.fixtures_run import write_fixture_run  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROME = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")


RUN_DIR: list = []  # the fixture run the server shows (the tests that decide read its decisions)


def _need_browser():
    if CHROME and DRIVER:
        return
    msg = ("headless Chromium and chromedriver are needed (Debian: apt-get install -y chromium chromium-driver); "
           f"found chromium={CHROME}, chromedriver={DRIVER}")
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need_browser()
    run_dir = write_fixture_run(tmp_path_factory.mktemp("browser") / "run", with_umap=True)
    RUN_DIR.append(run_dir)
    port = _free_port()
    log = open(run_dir.parent / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "curator", "explore", str(run_dir), "--port", str(port),
                             "--map-method", "pca"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                pytest.fail(f"curator explore did not come up: {(run_dir.parent / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the process group this fixture started
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROME
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1600,1200"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def _wait_for(driver, predicate, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception:  # the page is still building
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what() if callable(what) else what}")


def _image_states(driver) -> list[tuple[bool, int]]:
    """(finished loading, natural width) of every image in the main area, in page order."""
    return [tuple(x) for x in driver.execute_script(
        "return Array.from(document.querySelectorAll('[data-testid=\"stMain\"] img'))"
        ".map(i => [i.complete, i.naturalWidth]);")]


def test_overview_renders(browser, server, tmp_path):
    browser.get(server)
    _wait_for(browser, lambda: "Overview" in browser.find_element("tag name", "h1").text, what="the overview title")
    _wait_for(browser, lambda: "Training samples" in browser.find_element("tag name", "body").text, what="metrics")
    _wait_for(browser, lambda: browser.execute_script(
        "return document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] canvas, [data-testid=\"stVegaLiteChart\"] svg').length") > 0,
        what="the class histogram")
    shot = tmp_path / "overview.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_flagged_grid_renders_thumbnails(browser, server, tmp_path):
    browser.get(f"{server}/flagged")
    _wait_for(browser, lambda: "Flagged samples" in browser.find_element("tag name", "h1").text, what="the grid title")
    # Wait until the grid shows at least 12 images, every one finished loading and decoded. The page
    # may still be adding images (or replacing them on a rerun) while earlier ones load, so the
    # condition is checked on one snapshot of all images; a thumbnail that stays broken times out.
    last: list = []

    def all_decoded():
        last[:] = _image_states(browser)
        return len(last) >= 12 and all(done and width > 0 for done, width in last)

    _wait_for(browser, all_decoded, what=lambda: f"12 decoded thumbnails; last seen (complete, naturalWidth): {last}")
    assert "samples match the filters" in browser.find_element("tag name", "body").text
    shot = tmp_path / "flagged.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_overview_counts_the_issue_kinds_and_the_grid_filters_by_kind(browser, server, tmp_path):
    from selenium.webdriver.common.keys import Keys

    browser.get(server)
    body = lambda: browser.find_element("tag name", "body").text  # noqa: E731
    _wait_for(browser, lambda: "Issues by kind" in body(), what="the issue kinds on the overview")
    kinds = ("Label", "Duplicate", "Leak", "Quality", "Outlier")      # metrics render after the heading
    _wait_for(browser, lambda: all(k in body() for k in kinds), what=lambda: f"the counts of {kinds}")
    heading = [h for h in browser.find_elements("css selector", "h3") if "Issues by kind" in h.text][0]
    browser.execute_script("arguments[0].scrollIntoView()", heading)
    time.sleep(1)
    shot = tmp_path / "overview_kinds.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")

    browser.get(f"{server}/flagged")
    _wait_for(browser, lambda: "samples match the filters" in body(), what="the grid")
    _wait_for(browser, lambda: browser.find_element("css selector", 'input[aria-label="Issue kinds"]'), what="the kinds")
    box = browser.find_element("css selector", 'input[aria-label="Issue kinds"]')
    box.click()
    box.send_keys("quality")
    option = _wait_for(browser, lambda: [o for o in browser.find_elements("css selector", '[role="option"]')
                                         if o.text.strip() == "quality"], what="the 'quality' option")
    option[0].click()
    browser.find_element("css selector", 'button[aria-label="Remove label"]').click()
    browser.find_element("tag name", "body").send_keys(Keys.ESCAPE)
    _wait_for(browser, lambda: "issues: quality" in body() and "issues: label\n" not in body() + "\n",
              what=lambda: f"quality tiles only; page says {[l for l in body().splitlines() if 'issues' in l]}")
    lines = [l for l in body().splitlines() if l.startswith("issues:")]
    assert lines and all("quality" in l for l in lines)
    assert any(l.startswith("issues: label · quality") for l in lines)     # a label issue on a bad image says so
    shot = tmp_path / "grid_quality.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")


def test_keyboard_review_without_carry_over(browser, server, tmp_path):
    """k keeps, the right arrow opens the next sample with an empty class chooser, u undoes: in a real browser."""
    from selenium.webdriver.common.action_chains import ActionChains

    from curator.review import load_decision_log, load_decisions

    run_dir = RUN_DIR[0]
    (run_dir / "decisions.parquet").unlink(missing_ok=True)
    browser.get(f"{server}/sample")
    body = lambda: browser.find_element("tag name", "body").text  # noqa: E731
    _wait_for(browser, lambda: "Keep label" in body() and "Relabel as" in body(), what="the review buttons")
    box = lambda: browser.find_element("css selector", 'input[aria-label="Sample id"]').get_attribute("value")  # noqa: E731
    first = box()
    time.sleep(1)
    ActionChains(browser).send_keys("k").perform()
    _wait_for(browser, lambda: first in set(load_decisions(run_dir)["sample_id"]), what="the keep saved by the k key")
    assert load_decisions(run_dir).set_index("sample_id").loc[first, "action"] == "keep"
    _wait_for(browser, lambda: "kept (label confirmed)" in body(), what="the decision shown")
    ActionChains(browser).send_keys("\ue014").perform()                  # the right arrow: the next sample
    _wait_for(browser, lambda: box() not in ("", first), what="the next sample")
    second = box()
    chooser = lambda: browser.execute_script(  # noqa: E731  the "Relabel as" box: its text and its input's placeholder
        "const b = Array.from(document.querySelectorAll('[data-testid=\"stSelectbox\"]'))"
        ".find(e => e.innerText.startsWith('Relabel as'));"
        "if (!b) return null; const i = b.querySelector('input');"
        "return b.innerText + ' | ' + (i ? (i.getAttribute('placeholder') || '') + ' | ' + i.value : '');")
    _wait_for(browser, lambda: "choose a class for this sample" in (chooser() or ""),
              what=lambda: f"an empty class chooser; found {chooser()!r}")
    shot = tmp_path / "sample_keyboard.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    ActionChains(browser).send_keys("u").perform()                        # undo the keep on the first sample
    _wait_for(browser, lambda: len(load_decisions(run_dir)) == 0, what="the undo")
    log = load_decision_log(run_dir)
    assert log["action"].tolist() == ["keep", "clear"] and log["sample_id"].tolist() == [first, first]
    assert second != first


def test_spot_check_answered_with_the_keyboard(browser, server, tmp_path):
    """Draw a quick spot check, answer three samples with k / d from the true labels, see the estimate."""
    from selenium.webdriver.common.action_chains import ActionChains

    from curator.audit.spot_check import read_spot_check
    from curator.review import load_decisions
    from curator.explore.run import load_run

    run_dir = RUN_DIR[0]
    (run_dir / "decisions.parquet").unlink(missing_ok=True)
    (run_dir / "spot_check.json").unlink(missing_ok=True)
    table = load_run(run_dir).table.set_index("sample_id")
    browser.get(f"{server}/spot_check")
    body = lambda: browser.find_element("tag name", "body").text  # noqa: E731
    _wait_for(browser, lambda: "Draw the sample" in body(), what="the draw button")
    [l for l in browser.find_elements("css selector", "label") if l.text.startswith("quick")][0].click()
    time.sleep(1)
    [b for b in browser.find_elements("tag name", "button") if b.text == "Draw the sample"][0].click()
    _wait_for(browser, lambda: read_spot_check(run_dir) is not None and "0 of" in body(), what="the drawn sample")
    assert read_spot_check(run_dir)["mode"] == "quick"
    for i in range(3):
        line = _wait_for(browser, lambda: [x for x in body().splitlines() if x.startswith("sample ")], what="a sample")
        sid = line[0].split(" ", 1)[1]
        wrong = table.loc[sid, "true_label"] != table.loc[sid, "label"]
        ActionChains(browser).send_keys("d" if wrong else "k").perform()
        _wait_for(browser, lambda: len(load_decisions(run_dir)) == i + 1, what=f"answer {i + 1} saved")
        assert load_decisions(run_dir).set_index("sample_id").loc[sid, "action"] == ("drop" if wrong else "keep")
    _wait_for(browser, lambda: "3 of" in body() and "Estimated precision" in body(), what="the estimate")
    shot = tmp_path / "spot_check.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")


def test_map_region_drag_gets_one_bulk_keep(browser, server, tmp_path):
    """Drag a rectangle on the embedding map (Altair's interval selection "region"): the page lists the samples inside
    it, and "Keep all" saves a keep for exactly that many samples, as one batch, which form a rectangle on the map."""
    import pandas as pd
    from selenium.webdriver.common.action_chains import ActionChains

    from curator.explore.embedding_map import samples_in_region
    from curator.review import load_decision_log, load_decisions

    run_dir = RUN_DIR[0]
    (run_dir / "decisions.parquet").unlink(missing_ok=True)
    browser.get(f"{server}/map")
    body = lambda: browser.find_element("tag name", "body").text  # noqa: E731
    marks = '[data-testid="stVegaLiteChart"] svg.marks'               # Streamlit draws the selectable chart as SVG
    _wait_for(browser, lambda: "No region selected" in body() and browser.find_elements("css selector", marks)
              and browser.find_element("css selector", marks).size["width"] > 200, what="the map")
    time.sleep(1)                                                      # let vega attach its event handlers
    chart = browser.find_element("css selector", marks)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", chart)
    w, h = chart.size["width"], chart.size["height"]
    # from the upper-left quarter point to the centre and on to the lower-right quarter point (offsets from the centre)
    ActionChains(browser).move_to_element_with_offset(chart, -w // 4, -h // 4).click_and_hold() \
        .move_by_offset(w // 8, h // 8).move_by_offset(w // 8, h // 8).move_by_offset(w // 4, h // 4).release().perform()
    line = _wait_for(browser, lambda: [x for x in body().splitlines() if x.endswith("samples in the selected region")],
                     what="the samples in the selected region")
    shown = int(line[0].split()[0].replace(",", ""))
    points = pd.read_parquet(run_dir / "umap.parquet")
    assert 0 < shown < len(points), (shown, len(points))               # a region, not the whole map
    shot = tmp_path / "map_region.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    [b for b in browser.find_elements("tag name", "button") if b.text == "Keep all"][0].click()
    _wait_for(browser, lambda: len(load_decisions(run_dir)) == shown,
              what=lambda: f"{shown} keep decisions; found {len(load_decisions(run_dir))}")
    log = load_decision_log(run_dir)
    assert (log["action"] == "keep").all() and log["batch"].nunique() == 1 and len(log) == shown
    # the decided samples are exactly the map's points inside their own bounding box: a rectangle's contents
    mine = points[points["sample_id"].isin(set(log["sample_id"]))]
    box = samples_in_region(points, (mine["x"].min(), mine["x"].max()), (mine["y"].min(), mine["y"].max()))
    assert set(box["sample_id"]) == set(log["sample_id"])


def test_duplicate_groups_gallery(browser, server, tmp_path):
    """The gallery renders each group's thumbnails, and a click on "Keep one, drop the others" decides the group."""
    from curator.review import load_decisions

    run_dir = RUN_DIR[0]
    (run_dir / "decisions.parquet").unlink(missing_ok=True)
    browser.get(f"{server}/duplicates")
    body = lambda: browser.find_element("tag name", "body").text  # noqa: E731
    _wait_for(browser, lambda: "export keeps" in body() and "different labels" in body(), what="the groups")
    _wait_for(browser, lambda: (lambda s: len(s) >= 4 and all(d and w > 0 for d, w in s))(_image_states(browser)),
              what=lambda: f"4 decoded thumbnails; found {_image_states(browser)}")
    shot = tmp_path / "duplicates.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    [b for b in browser.find_elements("tag name", "button") if b.text == "Keep one, drop the others"][0].click()
    _wait_for(browser, lambda: sorted(load_decisions(run_dir)["action"]) == ["drop", "keep"], what="the group's decision")
    _wait_for(browser, lambda: "keep one, drop the others" in body(), what="the group's state")
    shot = tmp_path / "duplicates_decided.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
