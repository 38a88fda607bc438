"""The try-it page at GET /, in a real headless Chromium against a running service: what it
shows for pasted texts, a key and a chosen model."""

import shutil

import httpx
import pytest
from serve_helpers import KEY, WordCounter, live_server

from polarity.serve.routes.page import CSP


def test_the_page_and_its_files_need_no_key_and_allow_nothing_foreign():
    with live_server() as url:
        page = httpx.get(f"{url}/")
        assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
        assert "text/html" in page.headers["content-type"]
        for asset in ("/page.js", "/page.css"):
            assert httpx.get(f"{url}{asset}").status_code == 200
        # everything it loads comes from the service itself; no inline script
        assert "http" not in page.text.replace('href="/docs"', "")
        assert "<script>" not in page.text and "onclick" not in page.text
        assert httpx.post(f"{url}/", json={"inputs": "good"}).status_code == 401  # TEI's


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install -e '.[dev]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("headless Chromium is not installed: apt-get install -y chromium "
                    "chromium-driver (.ci/run does)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1100,800"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture
def browser():
    b = _browser()
    yield b
    b.quit()


def _ask(browser, url, texts, key, model=None, reasons=False):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    wait = WebDriverWait(browser, 15)
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.ID, "texts").send_keys("\n".join(texts))  # the key's change
    if model:
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f"#model option[value={model}]"))
        Select(browser.find_element(By.ID, "model")).select_by_value(model)
    if reasons:
        browser.find_element(By.ID, "reasons").click()
    browser.find_element(By.ID, "go").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "status"), ":")
               if key != KEY else
               ready.text_to_be_present_in_element((By.ID, "status"), "text(s) in"))
    return By


def test_the_page_shows_labels_confidence_the_model_and_the_reason_words(browser):
    models = {"fast": WordCounter(), "other": WordCounter()}
    with live_server(predictor=models, models=["fast", "other"]) as url:
        By = _ask(browser, url, ["a good day", "bad news, truly"], KEY, model="other",
                  reasons=True)
        options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#model option")]
        assert options == ["fast (default)", "other"]
        rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
        cells = [[td.text for td in r.find_elements(By.CSS_SELECTOR, "td:not(.text)")]
                 for r in rows]
        assert cells == [["POSITIVE", "90.0%", "other (model)"],
                         ["NEGATIVE", "80.0%", "other (model)"]]
        marks = [m.text for m in rows[0].find_elements(By.TAG_NAME, "mark")]
        assert marks == ["good"]  # from the reason "mentions 'good'"
        assert rows[1].find_elements(By.TAG_NAME, "mark") == []
        assert "mentions 'good'" in rows[0].find_element(By.CSS_SELECTOR, ".reason").text
        assert models["other"].calls and not models["fast"].calls


def test_the_page_says_what_is_wrong_with_a_key(browser):
    with live_server() as url:
        By = _ask(browser, url, ["a good day"], "wrong-key")
        status = browser.find_element(By.ID, "status")
        assert status.text.startswith("401: missing or invalid API key")
        assert status.get_attribute("class") == "error"
        assert not browser.find_element(By.ID, "results").is_displayed()
