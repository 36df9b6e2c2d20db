"""`arena-fast serve` in a real browser: headless Chromium (Debian's
`chromium` and `chromium-driver`, driven by Selenium) against the server
started as a user starts it (`arena-fast serve --port 0 --run ... --data
...`, a free loopback port).

The server is given the shared fixtures' tiny run and dataset (tests/serve/
conftest.py), a dataset built from a Kaggle-format CSV whose model names,
texts and ids carry script injections (and a run trained on it, with its
report, so they reach the run view too), and the real Kaggle rows of
../shared/data. Every page is saved as a screenshot with its HTML
(browser_support.ARTIFACTS: tests/.artifacts/serve/) and checked for
console errors, alerts, markup from data and any script from data having
run (browser_pages.settle). The views' element ids and classes are read in
browser_pages."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import polars as pl
import pytest

from strategies import train_extra

from .browser_support import (
    ARTIFACTS,
    browser_paths,
    clear_artifacts,
    console_errors,
    serving,
    start_chrome,
    wait_for,
)

# End to end, tens of seconds: a server, a browser, two tiny runs' first loads.
pytestmark = [pytest.mark.browser, pytest.mark.slow]

torch = train_extra("torch")
train_extra("transformers")
train_extra("matplotlib", "plot")  # the run's report
train_extra("starlette", "serve")
train_extra("uvicorn", "serve")
train_extra("selenium", "test")
browser_paths()  # no browser: skip the module (locally) or fail it (CI) before any fixture

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

import arena_fast as af  # noqa: E402
from arena_fast.dataset import TOKENIZER, BuildConfig, build_dataset, read_manifest  # noqa: E402
from arena_fast.report import write_report  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import keyword_rows  # noqa: E402

from .browser_pages import (  # noqa: E402
    PAIR,
    WORDS,
    XSS,
    XSS_IDS,
    assert_judged,
    assert_literal,
    encodings_text,
    fill_pair,
    form_pair,
    open_page,
    settle,
    shard_rows,
    shown_rows,
    worst_first,
    xss_csv,
)


@pytest.fixture(scope="module")
def xss_data(tmp_path_factory) -> dict:
    """The injection dataset (`xss-data`, 2 folds) and a run trained one step on
    it (`xss-run`, its fold-0 rows predicted, with its report)."""
    root = tmp_path_factory.mktemp("browser")
    rows = xss_csv(root / "train.csv")
    data = root / "xss-data"
    build_dataset(BuildConfig(inputs=[str(root / "train.csv")], max_length=512, folds=2), data)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = root / "xss-run"
        train(TrainConfig(data=str(data), epochs=1, max_steps=1, max_tokens=2048, out=str(run)))
    finally:
        torch.set_num_threads(threads)
    write_report([run])  # RUN/report, shown by the run view in a sandboxed frame
    return {"rows": rows, "data": data, "run": run}


@pytest.fixture(scope="module")
def real_data(tmp_path_factory, data_dir: Path) -> Path:
    """The first 100 real Kaggle rows (../shared/data), built (`kaggle-head100`)."""
    out = tmp_path_factory.mktemp("real") / "kaggle-head100"
    source = str(data_dir / "kaggle_train_head100.csv")
    build_dataset(BuildConfig(inputs=[source], max_length=256, folds=2), out)
    return out


@pytest.fixture(scope="module")
def server(serve_run, serve_dataset, xss_data, real_data) -> str:
    """The base URL of `arena-fast serve` over all of the above."""
    runs = [serve_run, xss_data["run"]]
    datasets = [serve_dataset, xss_data["data"], real_data]
    clear_artifacts()
    with serving(runs, datasets, ARTIFACTS / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    session = start_chrome()
    try:
        yield session
    finally:
        session.quit()


def test_home_lists_what_was_given(server, browser):
    open_page(browser, server + "/", "home")
    runs = [
        li.get_attribute("data-name") for li in browser.find_elements(By.CSS_SELECTOR, "li.run")
    ]
    datasets = [
        li.get_attribute("data-name") for li in browser.find_elements(By.CSS_SELECTOR, "li.dataset")
    ]
    assert runs == ["run", "xss-run"]
    assert datasets == ["ds", "xss-data", "kaggle-head100"]
    # The CSP the server sends is in force: the page's own stylesheet loaded.
    color = browser.execute_script(
        "return getComputedStyle(document.querySelector('header.top')).display"
    )
    assert color == "flex"


def test_the_checks_see_an_injection(server, browser):
    """What the page checks rest on: markup put into the page unescaped is
    refused by the server's CSP, and that refusal is a console error."""
    browser.get(server + "/")
    wait_for(browser, "main")
    browser.execute_script(
        "document.querySelector('main').insertAdjacentHTML('beforeend', arguments[0])", XSS[1]
    )
    wait_for(browser, "main img[src='x']", visible=False)
    errors: list[str] = []
    for _ in range(50):  # the console reports the refusal a moment later
        errors += console_errors(browser)
        if any("Content Security Policy" in e for e in errors):
            break
        time.sleep(0.1)
    assert any("Content Security Policy" in e for e in errors), errors
    assert browser.execute_script("return window.__xss") is None


# -- Compare ----------------------------------------------------------------------------
def test_compare_shows_what_judge_compare_gives(server, browser, serve_run, xss_data):
    open_page(browser, server + "/compare", "compare-empty", ready="#compare-form")
    fill_pair(browser, PAIR)
    for box in browser.find_elements(By.CSS_SELECTOR, "#run-choice input[name='run']"):
        if not box.is_selected():
            box.click()
    browser.execute_script("window.__before_post = 1")
    browser.find_element(By.ID, "compare-submit").click()
    for run in ("run", "xss-run"):
        wait_for(browser, f"article.run-result[data-run='{run}'] td.prob")
    settle(browser, "compare-result")
    # The script's result (POST /api/compare) in the same page, not a new page.
    assert browser.execute_script("return window.__before_post") == 1
    for name, run_dir in (("run", serve_run), ("xss-run", xss_data["run"])):
        expected = assert_judged(browser, name, run_dir, PAIR)
    # The encoded input, turn by turn, in both orders.
    orders = browser.find_elements(By.CSS_SELECTOR, "#encodings article.encoding div.order")
    assert {o.get_attribute("data-order") for o in orders} == {"original", "swapped"}
    for order in orders:
        blocks = order.find_elements(By.CSS_SELECTOR, "div.turn-block")
        assert [b.get_attribute("data-turn") for b in blocks] == ["0", "1"]
        fields = order.find_elements(By.CSS_SELECTOR, "div.field")
        assert sum(int(f.get_attribute("data-kept")) for f in fields) > 0
    assert expected["turns"] == 2


def test_compare_keeps_injections_inert(server, browser, xss_data):
    """Rows whose model names and texts carry script, prefilled from the
    dataset by id, and a pair of them all typed in and compared by both
    runs: nothing runs, all of it reads as text."""
    for i, attack in enumerate(XSS):
        row = xss_data["rows"][i]
        url = f"{server}/compare?dataset=xss-data&id={row['id']}"
        open_page(browser, url, f"compare-xss-{i}", ready="#compare-form")
        source = browser.find_element(By.ID, "source")
        models = [m.text for m in source.find_elements(By.CSS_SELECTOR, ".model")]
        assert models == [row["model_a"], row["model_b"]]
        prompt = browser.find_element(By.CSS_SELECTOR, "textarea[name='prompt']")
        assert prompt.get_attribute("value") == json.loads(row["prompt"])[0]
        assert_literal(browser, [attack], f"row {row['id']}")
    pair = {"prompt": [" ".join(XSS)], "response_a": ["\n".join(XSS)], "response_b": [XSS[0]]}
    fill_pair(browser, pair)
    browser.find_element(By.ID, "compare-submit").click()
    for run in ("run", "xss-run"):
        wait_for(browser, f"article.run-result[data-run='{run}'] td.prob")
    wait_for(browser, "#encodings article.encoding")
    settle(browser, "compare-xss-typed")
    encodings = browser.find_element(By.ID, "encodings").text
    for attack in XSS:
        assert attack in encodings, attack


# -- the dataset browser ----------------------------------------------------------------
def test_dataset_filter_and_open_a_row(server, browser, serve_dataset):
    open_page(browser, server + "/", "home")
    browser.find_element(By.CSS_SELECTOR, "li.dataset[data-name='ds'] a").click()
    wait_for(browser, "#total")
    settle(browser, "dataset")
    Select(browser.find_element(By.NAME, "fold")).select_by_value("1")
    labels = Select(browser.find_element(By.NAME, "label"))
    labels.select_by_index(2)  # after "any": the second class (B wins)
    label_name = labels.first_selected_option.text
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type='submit']").click()
    WebDriverWait(browser, 30).until(lambda b: "fold=1" in b.current_url)
    wait_for(browser, "#total")
    settle(browser, "dataset-filtered")

    rows = shard_rows(serve_dataset, ["id", "fold", "labels", "truncated", "turns"])
    want = rows.filter(
        (pl.col("fold") == 1) & (pl.col("labels").arr.arg_max() == 1)
    )  # B wins: the space's second class
    assert 0 < want.height < 50
    assert int(browser.find_element(By.ID, "total").get_attribute("data-total")) == want.height
    shown = shown_rows(browser)
    assert [r["row"] for r in shown] == want["row"].to_list()
    assert [r["id"] for r in shown] == want["id"].to_list()
    assert {r["fold"] for r in shown} == {"1"} and {r["label"] for r in shown} == {label_name}

    # Open a whole row (no cut), from its link in the table.
    row = want.filter(~pl.col("truncated")).row(0, named=True)
    browser.find_element(By.CSS_SELECTOR, f"#rows tr.row[data-row='{row['row']}'] a").click()
    wait_for(browser, "#fields")
    settle(browser, "dataset-row")
    assert browser.find_element(By.CSS_SELECTOR, "#fields td.id").text == row["id"]
    source = keyword_rows(60, 0, max_turns=2).filter(pl.col("id") == row["id"]).row(0, named=True)
    for order in ("original", "swapped"):
        text = browser.find_element(By.ID, order).text
        for turn in range(row["turns"]):  # every turn's texts, as encoded
            for field in ("prompt", "response_a", "response_b"):
                assert source[field][turn] in text, (order, turn, field)
        pieces = browser.find_elements(By.CSS_SELECTOR, f"#{order} tr.block")
        turns = {p.find_element(By.TAG_NAME, "th").text.split(":")[0] for p in pieces}
        assert {f"turn {t + 1}" for t in range(row["turns"])} <= turns, turns


def test_dataset_pages_through_real_rows(server, browser, data_dir, real_data):
    """The real Kaggle rows (../shared/data): page 2, a row, the dropped rows."""
    manifest = json.loads((real_data / "manifest.json").read_text())
    kept = manifest["counts"]["rows"]
    open_page(browser, server + "/datasets/kaggle-head100", "real-dataset", ready="#total")
    assert int(browser.find_element(By.ID, "total").get_attribute("data-total")) == kept
    browser.find_element(By.CSS_SELECTOR, "nav.pager a[rel='next']").click()
    WebDriverWait(browser, 30).until(lambda b: "page=2" in b.current_url)
    wait_for(browser, "#rows")
    settle(browser, "real-dataset-page2")
    shown = shown_rows(browser)
    assert [r["row"] for r in shown] == list(range(50, kept))
    with (data_dir / "kaggle_train_head100.csv").open(encoding="utf-8", newline="") as f:
        source = {r["id"]: r for r in csv.DictReader(f)}
    assert {r["id"] for r in shown} <= set(source)

    browser.find_element(By.CSS_SELECTOR, "#rows tr.row[data-row='60'] a").click()
    wait_for(browser, "#fields")
    settle(browser, "real-dataset-row")
    row_id = browser.find_element(By.CSS_SELECTOR, "#fields td.id").text
    models = [m.text for m in browser.find_elements(By.CSS_SELECTOR, "#fields td.model")]
    assert models == [source[row_id]["model_a"], source[row_id]["model_b"]]
    prompt = json.loads(source[row_id]["prompt"])[-1]
    encoded = " ".join(browser.find_element(By.ID, "original").text.split())
    assert " ".join(prompt.split()[:5]) in encoded

    # The rows the build dropped, by reason.
    dropped = manifest["counts"]["dropped"]
    assert sum(dropped.values()) == 100 - kept > 0
    browser.get(server + "/datasets/kaggle-head100/dropped")
    wait_for(browser, "#reasons")
    settle(browser, "real-dataset-dropped")
    reasons = browser.find_elements(By.CSS_SELECTOR, "#reasons tbody tr")
    shown_counts = {
        tr.find_element(By.TAG_NAME, "a").text: int(tr.find_elements(By.TAG_NAME, "td")[1].text)
        for tr in reasons
    }
    assert shown_counts == dropped
    reason = sorted(dropped)[0]
    browser.find_element(By.LINK_TEXT, reason).click()
    wait_for(browser, "#dropped")
    settle(browser, "real-dataset-dropped-reason")
    ids = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#dropped td.id")]
    assert len(ids) == dropped[reason] and set(ids) <= set(source)


# -- the run view -----------------------------------------------------------------------
def test_run_worst_error_first_opens_in_compare(server, browser, serve_run):
    open_page(browser, server + "/", "home")
    browser.find_element(By.CSS_SELECTOR, "li.run[data-name='run'] a").click()
    wait_for(browser, "#predictions")
    settle(browser, "run")
    ids, losses = worst_first(serve_run)
    assert int(browser.find_element(By.ID, "total").get_attribute("data-total")) == len(ids)
    rows = browser.find_elements(By.CSS_SELECTOR, "#predictions tr.prediction")
    shown = [float(tr.get_attribute("data-loss")) for tr in rows]
    assert shown == pytest.approx(losses[: len(rows)], abs=1e-9)
    assert rows[0].get_attribute("data-id") == ids[0]
    assert rows[0].find_element(By.CSS_SELECTOR, "td.n").text == "1"  # rank

    # Only the wrong ones.
    Select(browser.find_element(By.NAME, "wrong")).select_by_value("yes")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type='submit']").click()
    WebDriverWait(browser, 30).until(lambda b: "wrong=yes" in b.current_url)
    wait_for(browser, "#total")
    settle(browser, "run-wrong")
    preds = pl.read_parquet(serve_run / "valid_predictions.parquet", columns=["probs", "labels"])
    wrong = int(
        (
            preds["probs"].to_numpy().argmax(axis=1) != preds["labels"].to_numpy().argmax(axis=1)
        ).sum()
    )
    assert int(browser.find_element(By.ID, "total").get_attribute("data-total")) == wrong
    rows = browser.find_elements(By.CSS_SELECTOR, "#predictions tr.prediction")
    assert rows and all("wrong" in tr.get_attribute("class").split() for tr in rows)

    # The worst error, opened in Compare: prefilled from the run's dataset, scored by the run.
    worst = rows[0].get_attribute("data-id")
    rows[0].find_element(By.CSS_SELECTOR, "a.compare").click()
    wait_for(browser, "#compare-form")
    assert "run=run" in browser.current_url
    settle(browser, "run-worst-in-compare")
    assert browser.find_element(By.CSS_SELECTOR, "#source code").text == worst
    ticked = browser.find_elements(By.CSS_SELECTOR, "#run-choice input[name='run']:checked")
    assert [box.get_attribute("value") for box in ticked] == ["run"]
    if not browser.find_elements(By.CSS_SELECTOR, "article.run-result td.prob"):
        browser.find_element(By.ID, "compare-submit").click()
    wait_for(browser, "article.run-result[data-run='run'] td.prob")
    settle(browser, "run-worst-compared")
    assert_judged(browser, "run", serve_run, form_pair(browser))


# -- injections in every view -----------------------------------------------------------
def test_dataset_views_keep_injections_inert(server, browser, xss_data):
    rows = {r["id"]: r for r in xss_data["rows"]}
    models = [r["model_a"] for r in xss_data["rows"][: len(XSS)]]
    open_page(browser, server + "/datasets/xss-data", "xss-dataset", ready="#rows")
    assert_literal(browser, [*models, *XSS_IDS], "the dataset table")

    # Searched by model name and by decoded text.
    for field, term in (("q", "<script>"), ("text", 'onerror="window')):
        box = browser.find_element(By.NAME, field)
        box.clear()
        box.send_keys(term)
        browser.find_element(By.CSS_SELECTOR, "form.filters button[type='submit']").click()
        WebDriverWait(browser, 30).until(lambda b, f=field: f"{f}=" in b.current_url)
        wait_for(browser, "#total")
        settle(browser, f"xss-dataset-search-{field}")
        found = [r["id"] for r in shown_rows(browser)]
        assert found, (field, term)
        assert_literal(browser, [term], f"search {field}")
        browser.get(server + "/datasets/xss-data")
        wait_for(browser, "#rows")

    # Each attacking row's page: its model names, ids and texts as text.
    table = shard_rows(xss_data["data"], ["id"])
    attacking = [
        r for r in table["id"].to_list() if r in XSS_IDS or r in rows and rows[r]["model_a"] in XSS
    ]
    assert len(attacking) == len(XSS) + len(XSS_IDS)
    for row_id in attacking:
        index = table.filter(pl.col("id") == row_id)["row"][0]
        open_page(
            browser, f"{server}/datasets/xss-data/rows/{index}", f"xss-row-{index}", "#fields"
        )
        source = rows[row_id]
        assert browser.find_element(By.CSS_SELECTOR, "#fields td.id").text == row_id
        assert_literal(browser, [source["model_a"], json.loads(source["prompt"])[0]], row_id)
        if row_id in XSS_IDS:  # its link to Compare carries the id, escaped
            browser.find_element(By.CSS_SELECTOR, "nav.pager a.compare").click()
            wait_for(browser, "#compare-form")
            settle(browser, f"xss-row-{index}-compare")
            assert browser.find_element(By.CSS_SELECTOR, "#source code").text == row_id

    # The dropped rows (identical answers), whose texts and model names attack too.
    open_page(browser, server + "/datasets/xss-data/dropped", "xss-dropped", ready="#reasons")
    browser.find_element(By.LINK_TEXT, "identical").click()
    wait_for(browser, "#dropped")
    settle(browser, "xss-dropped-identical")
    dropped = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#dropped td.id")]
    assert sorted(dropped) == sorted(r["id"] for r in xss_data["rows"][-2:])


def test_run_view_keeps_injections_inert(server, browser, xss_data):
    ids, _ = worst_first(xss_data["run"])
    attacks = [i for i in ids if i in XSS_IDS]
    assert attacks, "no attacking id among the held-out rows"
    open_page(browser, server + "/runs/xss-run", "xss-run", ready="#predictions")
    shown = [
        tr.get_attribute("data-id")
        for tr in browser.find_elements(By.CSS_SELECTOR, "tr.prediction")
    ]
    assert shown == ids[: len(shown)]
    assert_literal(browser, attacks, "the prediction table")

    # The report, in a frame that may run no script, then alone.
    frame = browser.find_element(By.ID, "report")
    assert frame.get_attribute("sandbox") == ""
    browser.switch_to.frame(frame)
    try:
        wait_for(browser, "table")
        assert "xss-run" in browser.find_element(By.TAG_NAME, "body").text
        assert browser.find_elements(By.TAG_NAME, "script") == []
    finally:
        browser.switch_to.default_content()
    browser.find_element(By.LINK_TEXT, "open the report alone").click()
    wait_for(browser, "table")
    settle(browser, "xss-run-report")
    images = browser.find_elements(By.TAG_NAME, "img")
    assert images and all(
        browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images
    )
    browser.back()
    wait_for(browser, "#predictions")
    # The first one's link to Compare: its row, prefilled and scored.
    row = next(
        tr
        for tr in browser.find_elements(By.CSS_SELECTOR, "tr.prediction")
        if tr.get_attribute("data-id") == attacks[0]
    )
    row.find_element(By.CSS_SELECTOR, "a.compare").click()
    wait_for(browser, "#compare-form")
    settle(browser, "xss-run-compare")
    assert browser.find_element(By.CSS_SELECTOR, "#source code").text == attacks[0]
    if not browser.find_elements(By.CSS_SELECTOR, "article.run-result td.prob"):
        browser.find_element(By.ID, "compare-submit").click()
    wait_for(browser, "article.run-result[data-run='xss-run'] td.prob")
    settle(browser, "xss-run-compared")


def test_compare_without_a_run_explains_the_encoding(server, browser, real_data):
    """No run ticked: the encoding view alone, with a dataset's encoder,
    its counts and cuts those of that encoder."""
    long = " ".join(WORDS * 40)
    pair = {"prompt": ["Summarise the list."], "response_a": [long], "response_b": ["Too long."]}
    open_page(browser, server + "/compare", "compare-encoding-empty", ready="#compare-form")
    fill_pair(browser, pair)
    for box in browser.find_elements(By.CSS_SELECTOR, "#run-choice input[name='run']"):
        if box.is_selected():
            box.click()
    Select(browser.find_element(By.NAME, "encoder")).select_by_value("data:kaggle-head100")
    browser.find_element(By.ID, "compare-submit").click()
    article = "#encodings article.encoding[data-encoder='data:kaggle-head100']"
    wait_for(browser, article)
    settle(browser, "compare-encoding")
    assert browser.find_elements(By.CSS_SELECTOR, "article.run-result") == []

    encoder = af.Encoder.from_config(
        af.Tokenizer.from_file(real_data / TOKENIZER), read_manifest(real_data)["encoder"]
    )
    encoded = encoder.encode(
        [pair["prompt"]], [pair["response_a"]], [pair["response_b"]], swap="both"
    )
    assert bool(encoded.truncated[0])
    for i, order in enumerate(("original", "swapped")):
        shown = browser.find_element(By.CSS_SELECTOR, f"{article} div.order[data-order='{order}']")
        summary = shown.find_element(By.CSS_SELECTOR, "p.summary").text
        assert summary.startswith(f"{encoded.lengths[i]} of {encoded.full_length[i]} tokens")
        # Only the long answer is cut: second in the original order, last when swapped.
        cut = shown.find_elements(By.CSS_SELECTOR, "div.field.cut")
        assert [f.get_attribute("data-field") for f in cut] == ["1" if i == 0 else "2"]
        assert 0 < int(cut[0].get_attribute("data-kept")) < int(cut[0].get_attribute("data-tokens"))


def test_compare_works_without_javascript(server, browser, serve_run):
    """With the page's script off the form posts to /compare and the server
    renders the same result (and adds turns itself) as the script builds."""
    open_page(browser, server + "/compare?run=run", "js-compare", ready="#compare-form")
    fill_pair(browser, PAIR)
    browser.find_element(By.ID, "compare-submit").click()
    wait_for(browser, "article.run-result[data-run='run'] td.prob")
    scripted = encodings_text(browser)

    browser = start_chrome(javascript=False)
    try:
        open_page(browser, server + "/compare", "nojs-compare-empty", ready="#compare-form")
        browser.find_element(By.CSS_SELECTOR, "textarea[name='prompt']").send_keys("kept")
        browser.find_element(By.ID, "add-turn").click()  # a POST: the page comes back
        WebDriverWait(browser, 30).until(
            lambda b: len(b.find_elements(By.CSS_SELECTOR, "#turns fieldset.turn")) == 2
        )
        assert (
            browser.find_element(By.CSS_SELECTOR, "textarea[name='prompt']").get_attribute("value")
            == "kept"
        )
        fill_pair(browser, PAIR)
        for box in browser.find_elements(By.CSS_SELECTOR, "#run-choice input[name='run']"):
            if box.is_selected() != (box.get_attribute("value") == "run"):
                box.click()
        browser.execute_script("window.__before_post = 1")
        browser.find_element(By.ID, "compare-submit").click()
        wait_for(browser, "article.run-result[data-run='run'] td.prob")
        settle(browser, "nojs-compare-result")
        # A new page (the server's), not the script's result in the old one.
        assert browser.execute_script("return window.__before_post") is None
        assert (
            browser.find_elements(By.CSS_SELECTOR, "article.run-result[data-run='xss-run']") == []
        )
        assert_judged(browser, "run", serve_run, PAIR)
        # The same encoded input as the script built, line for line.
        assert encodings_text(browser) == scripted
    finally:
        browser.quit()
