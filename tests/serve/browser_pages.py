"""The pages of `arena-fast serve` as the browser tests read them: the
injection data (a Kaggle CSV whose model names, texts and ids attack), the
checks after each page (`settle`), and readers of each view's elements
(the ids and classes of serve/templates and static/compare.js)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from arena_fast.diagnostics import log_loss
from arena_fast.predict import Judge

from .browser_support import (
    console_errors,
    injected,
    no_alert,
    page_text,
    snapshot,
    wait_for,
)

# What a page must show as text and never run.
XSS = (
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "javascript:window.__xss=1",
    "[click](javascript:window.__xss=1)",
    '"><svg onload="window.__xss=1">',
)
# Row ids that are attacks too (ids show in every table and go into links).
XSS_IDS = (
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    "javascript:window.__xss=1",
    "' onmouseover='window.__xss=1",
)
WORDS = "river stone cloud apple music paper garden window lamp ocean forest bread".split()


def xss_csv(path: Path, n: int = 48) -> list[dict]:
    """A Kaggle train.csv of `n` rows whose label follows "zebra" (see
    keyword_rows): the first rows carry `XSS` in their model names, prompts
    and answers, the next ones have `XSS_IDS` as ids, and two more rows with
    the same answer on both sides, dropped as `identical`, carry both."""
    rng = np.random.default_rng(7)

    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS, size=k))

    rows = []
    for i in range(n):
        label = i % 3
        a, b = words(int(rng.integers(4, 12))), words(int(rng.integers(4, 12)))
        a += " zebra" if label == 0 else ""
        b += " zebra" if label == 1 else ""
        model_a, model_b, prompt = f"model-{i % 4}", f"model-{(i + 1) % 4}", f"question {words(5)}"
        row_id = str(5000 + i)
        if i < len(XSS):
            attack = XSS[i]
            model_a, prompt, a = attack, f"{prompt} {attack}", f"{a} {attack}"
        elif i < len(XSS) + len(XSS_IDS):
            row_id = XSS_IDS[i - len(XSS)]
        elif i >= n - 2:  # dropped: the same answer on both sides
            attack = XSS[i % len(XSS)]
            model_b, a = attack, f"{a} {attack}"
            b = a
        rows.append(
            {
                "id": row_id,
                "model_a": model_a,
                "model_b": model_b,
                "prompt": json.dumps([prompt]),
                "response_a": json.dumps([a]),
                "response_b": json.dumps([b]),
                "winner_model_a": int(label == 0),
                "winner_model_b": int(label == 1),
                "winner_tie": int(label == 2),
            }
        )
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def open_page(browser, url: str, name: str, ready: str = "main") -> None:
    """Load `url`, wait for `ready`, keep a screenshot `name`, and check the
    page ran nothing it should not and logged no error."""
    browser.get(url)
    wait_for(browser, ready)
    settle(browser, name)


def settle(browser, name: str) -> None:
    """The checks after any page change: see `open_page`."""
    no_alert(browser)
    snapshot(browser, name)
    assert browser.execute_script("return window.__xss") is None, f"{name}: a script ran"
    assert console_errors(browser) == [], f"{name}: console errors"
    assert injected(browser) == [], f"{name}: markup from data"


def assert_literal(browser, texts, where: str) -> None:
    """Each of `texts` reads on the page as typed (escaped, not parsed)."""
    shown = page_text(browser)
    for text in texts:
        assert text in shown, f"{where}: {text!r} is not on the page as text"


PAIR = {
    "prompt": ["Which river runs through Paris?", "And which one through Rome?"],
    "response_a": ["The Seine.", "The Tiber, a zebra of a river."],
    "response_b": ["The Loire, I believe.", "The Arno."],
}


def fill_pair(browser, pair: dict) -> None:
    """Type `pair` into the Compare form, adding turns as needed."""
    turns = len(pair["prompt"])

    def shown(session) -> int:
        return len(session.find_elements(By.CSS_SELECTOR, "#turns fieldset.turn"))

    for count in range(shown(browser), turns):
        browser.find_element(By.ID, "add-turn").click()
        WebDriverWait(browser, 30).until(lambda b, count=count: shown(b) > count)
    for name, texts in pair.items():
        boxes = browser.find_elements(By.CSS_SELECTOR, f"#compare-form textarea[name='{name}']")
        assert len(boxes) == turns
        for box, text in zip(boxes, texts):
            box.clear()
            box.send_keys(text)


def read_probs(browser, run: str) -> dict:
    """The probabilities a run's result shows: {pass: {column: (value, shown)}}."""
    out: dict = {}
    for cell in browser.find_elements(
        By.CSS_SELECTOR, f"article.run-result[data-run='{run}'] table.probs td.prob"
    ):
        row = cell.find_element(By.XPATH, "./ancestor::tr[1]").get_attribute("data-pass")
        out.setdefault(row, {})[cell.get_attribute("data-col")] = (
            float(cell.get_attribute("data-value")),
            cell.text,
        )
    return out


_JUDGES: dict = {}


def judge(run: Path) -> Judge:
    """The run's `Judge`, loaded once."""
    if run not in _JUDGES:
        _JUDGES[run] = Judge(run)
    return _JUDGES[run]


def assert_judged(browser, run_name: str, run_dir: Path, pair: dict) -> dict:
    """The result shown for `run_name` equals `Judge(run_dir).compare(pair)`."""
    expected = judge(run_dir).compare(pair["prompt"], pair["response_a"], pair["response_b"])
    shown = read_probs(browser, run_name)
    passes = {"average": expected, "original": expected["original"], "swapped": expected["swapped"]}
    assert set(shown) == set(passes), shown
    for name, probs in passes.items():
        assert set(shown[name]) == set(expected["original"]), shown[name]
        for column, (value, text) in shown[name].items():
            assert value == pytest.approx(probs[column], abs=1e-6), (run_name, name, column)
            assert text == f"{probs[column]:.4f}"
    article = f"article.run-result[data-run='{run_name}']"
    verdict = browser.find_element(By.CSS_SELECTOR, f"{article} .verdict").text
    assert verdict == expected["verdict"]
    flip = browser.find_element(By.CSS_SELECTOR, f"{article} .flip").get_attribute("data-flip")
    assert flip == ("yes" if expected["flip"] else "no")
    return expected


def shard_rows(data: Path, columns: list[str]) -> pl.DataFrame:
    """The dataset's rows in shard order (the browser's row numbers)."""
    manifest = json.loads((data / "manifest.json").read_text())
    return pl.concat(
        [pl.read_parquet(data / s["file"], columns=columns) for s in manifest["shards"]]
    ).with_row_index("row")


def shown_rows(browser) -> list[dict]:
    """The dataset table's rows as shown: row number, id, fold, label."""
    out = []
    for tr in browser.find_elements(By.CSS_SELECTOR, "#rows tr.row"):
        cells = tr.find_elements(By.TAG_NAME, "td")
        out.append(
            {
                "row": int(tr.get_attribute("data-row")),
                "id": tr.find_element(By.CSS_SELECTOR, "td.id").text,
                "fold": cells[3].text,
                "label": cells[4].text,
            }
        )
    return out


def worst_first(run: Path) -> tuple[list[str], list[float]]:
    """The run's held-out ids and log losses (`diagnostics.log_loss` of each
    row), worst first (ties in file order)."""
    preds = pl.read_parquet(run / "valid_predictions.parquet", columns=["id", "probs", "labels"])
    probs, labels = preds["probs"].to_numpy(), preds["labels"].to_numpy()
    losses = [log_loss(probs[i : i + 1], labels[i : i + 1]) for i in range(len(preds))]
    order = sorted(range(len(preds)), key=lambda i: -losses[i])
    return [preds["id"][i] for i in order], [losses[i] for i in order]


def form_pair(browser) -> dict:
    """The texts in the Compare form, turn by turn."""
    return {
        name: [
            box.get_attribute("value")
            for box in browser.find_elements(By.CSS_SELECTOR, f"textarea[name='{name}']")
        ]
        for name in ("prompt", "response_a", "response_b")
    }


def encodings_text(browser) -> str:
    return browser.find_element(By.ID, "encodings").get_attribute("innerText")
