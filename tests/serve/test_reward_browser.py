"""A reward run in `arena-fast serve`, in a real browser (as test_browser.py:
headless Chromium driven by Selenium against the server a user starts):
Compare's script (static/compare.js, from POST /api/compare) shows each
answer's reward beside the probabilities derived from them, equal to
`Judge.compare`, and the encoding as prompt + A / prompt + B; the run
view's prediction table has the reward columns. docs/reward.md,
"Predicting, reports and serve with a reward model"."""

from __future__ import annotations

import pytest

from strategies import train_extra

from .browser_support import ARTIFACTS, browser_paths, serving, start_chrome, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

torch = train_extra("torch")
train_extra("transformers")
train_extra("starlette", "serve")
train_extra("uvicorn", "serve")
train_extra("selenium", "test")
browser_paths()  # no browser: skip the module (locally) or fail it (CI) before any fixture

from selenium.webdriver.common.by import By  # noqa: E402

from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402

from .browser_pages import PAIR, fill_pair, judge, open_page, settle  # noqa: E402


@pytest.fixture(scope="module")
def reward_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reward_serve")
    data = build_rows(keyword_rows(60, 0), root, max_length=64, folds=3, layout="separate")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = TrainConfig(
            data=str(data), objective="reward", epochs=1, max_tokens=2048, out=str(root / "rrun")
        )
        train(config)
    finally:
        torch.set_num_threads(threads)
    return root / "rrun", data


@pytest.fixture(scope="module")
def server(reward_run):
    run, data = reward_run
    with serving([run], [data], ARTIFACTS / "reward-server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    session = start_chrome()
    try:
        yield session
    finally:
        session.quit()


def test_compare_script_shows_each_answers_reward(server, browser, reward_run):
    open_page(browser, server + "/compare", "reward-compare-empty", ready="#compare-form")
    fill_pair(browser, PAIR)
    browser.find_element(By.ID, "compare-submit").click()
    article = "article.run-result[data-run='rrun']"
    wait_for(browser, f"{article} td.reward")
    settle(browser, "reward-compare-result")
    expected = judge(reward_run[0]).compare(PAIR["prompt"], PAIR["response_a"], PAIR["response_b"])
    for side in ("a", "b"):
        cell = browser.find_element(By.CSS_SELECTOR, f"{article} tr[data-answer='{side}'] td")
        assert float(cell.get_attribute("data-value")) == pytest.approx(expected[f"reward_{side}"])
        assert cell.text == f"{expected[f'reward_{side}']:.4f}"
    cells = browser.find_elements(By.CSS_SELECTOR, f"{article} tr[data-pass='reward'] td.prob")
    assert [c.get_attribute("data-col") for c in cells] == [
        "winner_model_a",
        "winner_model_b",
        "winner_tie",
    ]
    for cell in cells:
        value = expected[cell.get_attribute("data-col")]
        assert float(cell.get_attribute("data-value")) == pytest.approx(value)
    titles = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#encodings div.order h4")]
    assert titles == ["prompt + A", "prompt + B"]


def test_run_view_shows_the_reward_columns(server, browser):
    open_page(browser, server + "/runs/rrun", "reward-run", ready="#predictions")
    head = browser.find_element(By.CSS_SELECTOR, "#predictions thead").text
    assert "reward A" in head and "reward B" in head
    rewards = browser.find_elements(By.CSS_SELECTOR, "#predictions td.reward")
    assert rewards and all(c.text for c in rewards)
