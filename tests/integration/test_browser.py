"""The demo page in a real browser (Debian's chromium, headless, driven by Selenium) against
the real stack: gateway process, worker, broker, model. Skips, saying why, only where no
chromium is installed (`make browser` installs it)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import ROOT
from tests.integration.test_gateway import Gateway, gateway  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SCREENSHOT = ROOT / "docs" / "demo.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM or not DRIVER:
        pytest.skip(
            "no chromium + chromedriver on PATH: `make browser` (apt-get install -y chromium "
            "chromium-driver) installs them"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,860")
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))  # no Selenium Manager
    try:
        yield driver
    finally:
        driver.quit()


def items(driver: Any, list_id: str) -> list[tuple[str, bool]]:
    """(item_id, explored) of the items the page shows in list ``list_id``, read in one go
    (the feed re-renders while the test reads it)."""
    script = (
        f"return [...document.querySelectorAll('#{list_id} li[data-item-id]')]"
        ".map(li => [li.dataset.itemId, li.dataset.explored === 'true'])"
    )
    return [(item_id, explored) for item_id, explored in driver.execute_script(script)]


def share(shown: list[tuple[str, bool]], genre: str, by_id: dict[str, Movie]) -> float:
    """Share of the ranked (not explored) items shown that are in ``genre``."""
    ranked = [item_id for item_id, explored in shown if not explored]
    return sum(genre in by_id[i].genres for i in ranked if i in by_id) / max(len(ranked), 1)


def test_search_click_and_watch_the_feed_move(
    browser: Any,
    gateway: Gateway,  # noqa: F811 - the fixture imported above
    movies: list[Movie],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    by_id = {m.item_id: m for m in movies}
    user = f"demo-{uuid.uuid4().hex[:8]}"  # a fresh user: a cold start
    browser.get(f"{gateway.url}/?user={user}")
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    wait.until(lambda d: len(items(d, "feed")) >= 5)
    assert browser.find_element(By.ID, "feed-meta").get_attribute("data-strategy") == "popular"
    horror_before = share(items(browser, "feed"), "Horror", by_id)

    box = browser.find_element(By.ID, "q")
    box.send_keys("a funny animated film for children", Keys.ENTER)
    wait.until(lambda d: len(items(d, "results")) >= 5)  # a functional timeout
    funny = items(browser, "results")
    assert share(funny, "Animation", by_id) + share(funny, "Children's", by_id) > 0.7
    assert "round trip" in browser.find_element(By.ID, "answer-meta").text

    box.clear()
    box.send_keys("a terrifying horror film with monsters", Keys.ENTER)
    wait.until(lambda d: d.find_element(By.ID, "results").get_attribute("data-request-id"))
    wait.until(lambda d: share(items(d, "results"), "Horror", by_id) >= 0.5)
    clicked = 0
    for item_id, _ in items(browser, "results"):
        if clicked == 5 or "Horror" not in by_id[item_id].genres:
            continue
        browser.find_element(By.CSS_SELECTOR, f'#results li[data-item-id="{item_id}"]').click()
        clicked += 1
        wait.until(
            lambda d, n=clicked: (
                d.find_element(By.ID, "feed-meta").get_attribute("data-user-events") == str(n)
            )
        )
    assert clicked >= 3
    horror_after = share(items(browser, "feed"), "Horror", by_id)
    print(f"\nfeed horror share: {horror_before:.2f} -> {horror_after:.2f} after {clicked} clicks")
    # measured through RecClient (test_loop): 0.0 -> 1.0; horror is 9% of the catalog
    assert horror_after >= 0.6 and horror_after - horror_before >= 0.4
    assert browser.find_element(By.ID, "status").text == ""
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert Path(SCREENSHOT).stat().st_size > 10_000
