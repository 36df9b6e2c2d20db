"""What the browser tests of `arena-fast serve` stand on: Debian's headless
Chromium driven by Selenium through Debian's chromedriver (nothing is
downloaded: the driver's path is given, so Selenium Manager never runs, and
`SE_OFFLINE=1` keeps it offline if it did), a server started as
`arena-fast serve --port 0` (a free loopback port), and page checks (screenshots
kept as artifacts, console errors, nothing from data run as script).

A missing browser skips the tests locally, with the reason; on CI
(`CI=true`), where `.ci/run` installs `chromium` and `chromium-driver`, it
is an error, so the suite never goes green by skipping them.

Screenshots and the page's HTML go to `tests/.artifacts/serve/` (or
`$ARENA_FAST_ARTIFACTS/serve/`), with the server's log."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Optional

import pytest

HERE = Path(__file__).resolve().parent
ARTIFACTS = Path(os.environ.get("ARENA_FAST_ARTIFACTS") or HERE.parent / ".artifacts") / "serve"
WINDOW = (1280, 1000)
HEADLESS_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-dev-shm-usage",  # containers have a small /dev/shm
    "--disable-gpu",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=en-US",
)
# Console lines that say nothing about the page under test.
IGNORED_CONSOLE = ("favicon.ico",)


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str):
    """Skip with `reason` locally; fail on CI, where `.ci/run` installs it."""
    if _on_ci():
        pytest.fail(f"{reason} (CI=true: .ci/run installs it, so this is an error)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def browser_paths() -> tuple[str, str]:
    """Chromium and its chromedriver: `$ARENA_FAST_CHROMIUM` /
    `$ARENA_FAST_CHROMEDRIVER`, else Debian's `chromium` / `chromedriver`
    on the PATH."""
    browser = os.environ.get("ARENA_FAST_CHROMIUM") or (
        shutil.which("chromium") or shutil.which("chromium-browser")
    )
    driver = os.environ.get("ARENA_FAST_CHROMEDRIVER") or shutil.which("chromedriver")
    missing = [
        name
        for name, path in (("chromium", browser), ("chromedriver", driver))
        if not path or not Path(path).is_file()
    ]
    if missing:
        unavailable(
            f"the browser tests need {' and '.join(missing)} "
            "(Debian: apt-get install chromium chromium-driver)"
        )
    return str(browser), str(driver)


def start_chrome(window: tuple[int, int] = WINDOW, javascript: bool = True):
    """A headless Chromium session (the caller quits it), with the pages'
    scripts off when not `javascript`. Its console is recorded
    (`console_errors`)."""
    from selenium import webdriver  # the test extra (test_browser.py checks it is there)
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "1"  # Selenium Manager, were it ever run, stays offline
    browser, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in HEADLESS_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={window[0]},{window[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_page_load_timeout(60)
    session.set_script_timeout(60)
    return session


# -- the server -------------------------------------------------------------------------
def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


class Server:
    """`arena-fast serve --port 0` in a subprocess (the CLI, as a user starts
    it): the port it bound is read from the address it prints on its own
    output (a pipe, so runs side by side never mix); `url` once the home page
    answers. Its output is copied to `log` as well."""

    def __init__(self, runs: Sequence[Path], datasets: Sequence[Path], log: Path):
        self.runs, self.datasets, self.log = list(runs), list(datasets), log
        self.process: Optional[subprocess.Popen] = None
        self.lines: list[str] = []
        self.copier: Optional[threading.Thread] = None
        self.url = ""

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "arena_fast", "serve", "--port", "0"]
        for run in self.runs:
            cmd += ["--run", str(run)]
        for data in self.datasets:
            cmd += ["--data", str(data)]
        return cmd

    def start(self, timeout: float = 60.0) -> str:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.copier = threading.Thread(target=self._copy, args=(self.process.stdout,), daemon=True)
        self.copier.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            found = re.search(r"arena-fast serve: (http://127\.0\.0\.1:\d+)", self.output())
            if found and _answers(found.group(1) + "/"):
                self.url = found.group(1)
                return self.url
            time.sleep(0.1)
        self.stop()
        command, tail = " ".join(self.command()), self.output()[-3000:]
        raise RuntimeError(f"arena-fast serve did not answer ({command}):\n{tail}")

    def _copy(self, stream) -> None:
        with self.log.open("w", encoding="utf-8") as log:
            for line in stream:
                self.lines.append(line)
                log.write(line)
                log.flush()

    def output(self) -> str:
        """What the server has printed so far."""
        return "".join(self.lines)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.copier is not None:
            self.copier.join(timeout=10)  # the pipe ends with the process
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


@contextlib.contextmanager
def serving(runs: Sequence[Path], datasets: Sequence[Path], log: Path) -> Iterator[str]:
    """The base URL of a server over `runs` and `datasets`, stopped after."""
    server = Server(runs, datasets, log)
    try:
        yield server.start()
    finally:
        server.stop()


def clear_artifacts() -> None:
    """An empty `ARTIFACTS` folder: only this run's pages are kept."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


# -- pages ------------------------------------------------------------------------------
def snapshot(session, name: str) -> Path:
    """The whole page as `ARTIFACTS/NAME.png` (beyond the window, up to
    6000 px tall) and its DOM as `NAME.html`."""
    png = ARTIFACTS / f"{name}.png"
    metrics = session.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    clip = {
        "x": 0,
        "y": 0,
        "width": max(1, min(int(size["width"]), 4000)),
        "height": max(1, min(int(size["height"]), 6000)),
        "scale": 1,
    }
    shot = session.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    html = session.page_source
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # another run may have cleared it
    png.write_bytes(base64.b64decode(shot["data"]))
    (ARTIFACTS / f"{name}.html").write_text(html, encoding="utf-8")
    return png


def console_errors(session) -> list[str]:
    """The console's errors since the last call (CSP violations, script
    errors, failed loads), less `IGNORED_CONSOLE`."""
    return [
        entry["message"]
        for entry in session.get_log("browser")
        if entry.get("level") == "SEVERE"
        and not any(ignored in entry["message"] for ignored in IGNORED_CONSOLE)
    ]


def no_alert(session) -> None:
    """Fail if a script opened an alert / confirm / prompt."""
    from selenium.common.exceptions import NoAlertPresentException

    try:
        alert = session.switch_to.alert
    except NoAlertPresentException:
        return
    text = alert.text
    alert.dismiss()
    raise AssertionError(f"the page opened an alert: {text!r}")


def wait_for(session, css: str, timeout: float = 30.0, visible: bool = True):
    """The first element matching `css`, once there (and shown)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    located = (By.CSS_SELECTOR, css)
    condition = ec.visibility_of_element_located if visible else ec.presence_of_element_located
    return WebDriverWait(session, timeout).until(condition(located), f"no {css!r} on the page")


# What markup from data would leave in the DOM had it not been escaped:
# event-handler attributes, javascript: URLs, scripts not shipped in /static/,
# plugins, frames that may run scripts.
_INJECTED_JS = """
const found = [];
for (const e of document.querySelectorAll('*')) {
  for (const a of e.attributes) {
    const value = a.value.trim().toLowerCase();
    if (a.name.startsWith('on')) found.push(e.tagName + ' ' + a.name + '=' + a.value);
    if (['href', 'src', 'action', 'formaction', 'xlink:href'].includes(a.name)
        && value.startsWith('javascript:')) found.push(e.tagName + ' ' + a.name + '=' + a.value);
  }
  if (e.tagName === 'SCRIPT') {
    const src = e.getAttribute('src') ? new URL(e.getAttribute('src'), location.href) : null;
    if (!src || src.origin !== location.origin || !src.pathname.startsWith('/static/'))
      found.push('script ' + (e.getAttribute('src') || e.textContent.slice(0, 80)));
  }
  if (e.tagName === 'OBJECT' || e.tagName === 'EMBED') found.push(e.tagName);
  // A frame is the app's own only when sandboxed without scripts (the run's report).
  if (e.tagName === 'IFRAME' && (!e.hasAttribute('sandbox')
      || e.getAttribute('sandbox').includes('allow-scripts')))
    found.push('iframe ' + e.getAttribute('src'));
}
return found;
"""

# The page's text as a reader sees it, form fields' values included.
_TEXT_JS = """
const parts = [document.body.innerText];
for (const e of document.querySelectorAll('textarea, input')) parts.push(e.value);
return parts.join('\\n');
"""


def injected(session) -> list[str]:
    """Markup on the page that only unescaped data could have put there."""
    return session.execute_script(_INJECTED_JS)


def page_text(session) -> str:
    """The visible text of the page and the values of its form fields."""
    return session.execute_script(_TEXT_JS)
