"""docs/page.png: the try-it page (GET /) of a real `polarity serve`, with texts analysed and
their reasons highlighted, taken in headless Chromium (apt-get install -y chromium
chromium-driver; selenium from the dev extra):

    python scripts/page_screenshot.py --model default --model vader --output docs/page.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

TEXTS = ["I love this phone, the battery is excellent", "Worst purchase ever, it broke in a day",
         "The plot was predictable but the acting was great"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--pick", help="the model chosen on the page (default: the first)")
    parser.add_argument("--output", type=Path, default=Path("docs/page.png"))
    args = parser.parse_args()
    models = args.model or ["default"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = "pk_screenshot"
    cmd = [sys.executable, "-m", "polarity", "serve", "--port", str(port), "--log-level",
           "warning"]
    for model in models:
        cmd += ["--model", model]
    server = subprocess.Popen(cmd, env={**os.environ, "API_KEY": key})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, server)
        _shoot(url, key, args.pick or models[0].partition("=")[0], args.output)
    finally:
        server.terminate()
        server.wait(30)
    print(f"wrote {args.output}")


def _wait(url: str, server: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the service at {url} did not become ready")


def _shoot(url: str, key: str, pick: str, output: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1000,860", "--hide-scrollbars"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        browser.get(url + "/")
        wait = WebDriverWait(browser, 120)
        browser.find_element(By.ID, "key").send_keys(key)
        browser.find_element(By.ID, "texts").send_keys("\n".join(TEXTS))
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f"#model option[value='{pick}']"))
        Select(browser.find_element(By.ID, "model")).select_by_value(pick)
        browser.find_element(By.ID, "reasons").click()
        browser.find_element(By.ID, "go").click()
        wait.until(ready.text_to_be_present_in_element((By.ID, "status"), "text(s) in"))
        output.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(output))
    finally:
        browser.quit()


if __name__ == "__main__":
    main()
