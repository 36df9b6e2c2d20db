"""The dataset browser of `arena-fast serve` (`serve.dataset_views`,
`serve.tables`, `serve.dropped`, `row_view`): filters, searches and page
totals checked against the shards themselves, a row's encoded form in both
orders with its cuts, dropped rows by reason, escaping, 404s and 400s, and
that a page of a large dataset reads only the rows it shows."""

from __future__ import annotations

import html
import re
import shutil

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from markupsafe import escape

from strategies import train_extra

train_extra("starlette", "serve")
train_extra("httpx", "test")

from starlette.testclient import TestClient  # noqa: E402

import arena_fast as af  # noqa: E402
from arena_fast.encoder import Template  # noqa: E402
from arena_fast.row_view import render_row, split_row  # noqa: E402
from arena_fast.serve import (  # noqa: E402
    Catalog,
    create_app,
    tables,  # noqa: E402
)
from arena_fast.serve.tables import DatasetTable  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402
from serve.big_dataset import write_big_dataset  # noqa: E402

XSS = ("<script>alert(1)</script>", '<img src=x onerror="alert(2)">', "javascript:alert(3)")
MODELS = ["gpt-4o", "claude-3", XSS[0], XSS[1]]
LANGUAGES = ["en", "de", None]


def _rows() -> pl.DataFrame:
    """120 keyword rows (1-3 turns) with models and languages, one long
    row, one repaired (a null answer), and rows the build drops: identical
    answers, two with no id, one with bad labels, a duplicate."""
    rows = keyword_rows(120, 0, max_turns=3)
    n = len(rows)
    rows = rows.with_columns(
        pl.Series("model_a", [MODELS[i % 4] for i in range(n)]),
        pl.Series("model_b", [MODELS[(i + 1) % 4] for i in range(n)]),
        pl.Series("language", [LANGUAGES[i % 3] for i in range(n)], dtype=pl.String),
        pl.Series("source", ["arena" if i % 5 == 0 else "kaggle" for i in range(n)]),
    ).to_dicts()
    long = XSS[2] + " " + " ".join(["long"] * 400) + " zebra"
    rows[7].update(prompt=rows[7]["prompt"][:1], response_b=rows[7]["response_b"][:1])
    rows[7]["response_a"] = [long]
    rows[9]["response_b"] = list(rows[9]["response_a"])  # dropped: identical
    rows[13]["response_b"] = [None] + rows[13]["response_b"][1:]  # repaired: null
    rows[11]["prompt"] = [XSS[0] + " " + XSS[1]] + rows[11]["prompt"][1:]
    bad = [dict(rows[0], id=None), dict(rows[1], id=None), dict(rows[2], id="x", labels=[1.0])]
    return pl.DataFrame(rows + bad + [dict(rows[3])])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets_view")
    return build_rows(_rows(), root, "browse", max_length=160, folds=3, swap=True)


@pytest.fixture(scope="module")
def client(dataset):
    with TestClient(create_app(Catalog.from_paths([], [dataset]))) as c:
        yield c


@pytest.fixture(scope="module")
def shards(dataset) -> pl.DataFrame:
    """The shards' columns as polars, with the row number and the class."""
    frame = pl.from_arrow(pq.read_table(dataset / "data-00000.parquet"))
    labels = np.array(frame["labels"].to_list())
    return frame.with_columns(
        pl.Series("index", range(len(frame))),
        pl.Series("cls", labels.argmax(axis=1)),
        (pl.col("repairs").cast(pl.Int64) | pl.col("flags").cast(pl.Int64) != 0).alias("rep"),
    )


def _total(page: str) -> int:
    return int(re.search(r'data-total="(\d+)"', page).group(1))


def _shown(page: str) -> list:
    return [int(i) for i in re.findall(r'<tr class="row" data-row="(\d+)"', page)]


def _get(client, url: str) -> str:
    r = client.get(url)
    assert r.status_code == 200, (url, r.text[:300])
    return r.text


@pytest.mark.parametrize(
    "params, expr",
    [
        ("", pl.lit(True)),
        ("fold=1", pl.col("fold") == 1),
        ("label=b", pl.col("cls") == 1),
        ("source=arena", pl.col("source") == "arena"),
        ("language=de", pl.col("language") == "de"),
        ("language=none", pl.col("language").is_null()),
        ("truncated=yes", pl.col("truncated")),
        ("truncated=no", ~pl.col("truncated")),
        ("repaired=yes", pl.col("rep")),
        ("turns_min=2&turns_max=2", pl.col("turns") == 2),
        (
            "fold=0&label=tie&turns_min=2",
            (pl.col("fold") == 0) & (pl.col("cls") == 2) & (pl.col("turns") >= 2),
        ),  # fmt: skip
        ("q=CLAUDE", (pl.col("model_a") == "claude-3") | (pl.col("model_b") == "claude-3")),
        (
            "q=onerror",
            pl.col("model_a").str.contains("onerror") | pl.col("model_b").str.contains("onerror"),
        ),  # fmt: skip
    ],
)
def test_filters_give_the_rows_of_the_shards(client, shards, params, expr):
    want = shards.filter(expr)["index"].to_list()
    page = _get(client, f"/datasets/browse?{params}")
    assert _total(page) == len(want)
    assert _shown(page) == want[:50]
    assert 'data-exact="yes"' in page


def test_filters_found_something(shards):
    """The filters above are not all trivially empty or full."""
    assert 0 < shards["rep"].sum() < len(shards)
    assert 0 < shards["truncated"].sum() < len(shards)
    assert shards["turns"].n_unique() == 3 and shards["source"].n_unique() == 2


def test_pages_cover_the_rows_in_order(client, shards):
    n = len(shards)
    seen = []
    url = "/datasets/browse"
    while url:
        page = _get(client, url)
        assert _total(page) == n
        seen += _shown(page)
        found = re.search(r'<a rel="next" href="([^"]+)"', page)
        url = html.unescape(found.group(1)) if found else None
    assert seen == list(range(n))
    assert len(_shown(_get(client, "/datasets/browse?page=2"))) == 50
    last = _get(client, f"/datasets/browse?page={-(-n // 50)}&fold=")
    assert 'rel="prev"' in last and 'rel="next"' not in last
    # the filters carry over to the next page
    page = _get(client, "/datasets/browse?source=kaggle")
    assert "source=kaggle" in re.search(r'rel="next" href="([^"]+)"', page).group(1)


def test_text_search_decodes_the_rows(client, dataset, shards):
    tok = af.Tokenizer.from_file(dataset / "tokenizer.json")
    texts = [tok.decode(np.frombuffer(b, "<i4").tolist()) for b in shards["input_ids"]]
    want = [i for i, t in enumerate(texts) if "zebra" in t.casefold()]
    assert 0 < len(want) < len(texts)
    page = _get(client, "/datasets/browse?text=ZEBRA")
    assert _shown(page) == want[:50]
    assert _total(page) >= min(len(want), 51)
    if 'data-exact="yes"' in page:
        assert _total(page) == len(want)
    page = _get(client, "/datasets/browse?text=zebra&fold=2")
    assert set(_shown(page)) <= {i for i in want if shards["fold"][i] == 2}


def test_row_page_shows_both_orders_with_the_cuts(client, dataset, shards):
    long = shards.filter(pl.col("id") == "7")["index"][0]
    assert shards["truncated"][long]
    page = _get(client, f"/datasets/browse/rows/{long}")
    for order in ("original", "swapped"):
        section = page.split(f'id="{order}"')[1].split("</section>")[0]
        assert 'class="span k-marker">......</span>' in section
        assert "truncated" in section and "has-cut" in section
        kept = shards[f"turns_kept{'_swapped' if order == 'swapped' else ''}"][long]
        assert f"turns kept {kept} / {shards['turns'][long]}" in section
        assert '<span class="special">&lt;bos&gt;</span>' in section
        assert '<span class="special">&lt;eos&gt;</span>' in section
    assert "A wins 1" in page or "B wins 1" in page or "tie 1" in page
    assert f'href="/compare?dataset=browse&amp;row={long}"' in page
    # the original order places model A's answer first, the swapped one B's
    a, b = shards["model_a"][long], shards["model_b"][long]
    original, swapped = page.split('id="swapped"')
    assert f"response A: {escape(a)}, response B: {escape(b)}" in original
    assert f"response A: {escape(b)}, response B: {escape(a)}" in swapped


def test_split_row_gives_back_the_texts_of_an_uncut_row(dataset):
    """The pieces cover every id, and an uncut row's text pieces decode to
    its turns (the template pieces found by their ids)."""
    import json

    manifest = json.loads((dataset / "manifest.json").read_text())
    tok = af.Tokenizer.from_file(dataset / "tokenizer.json")
    template = Template(**manifest["encoder"]["template"])
    table = pq.read_table(dataset / "data-00000.parquet").to_pylist()
    source = {r["id"]: r for r in _rows().to_dicts() if r["id"]}
    checked = 0
    for row in table:
        ids = np.frombuffer(row["input_ids"], "<i4").tolist()
        enc = manifest["encoder"]
        spans = split_row(ids, tok, template, enc["bos_token_id"], enc["eos_token_id"])
        assert [s.start for s in spans[1:]] == [s.stop for s in spans[:-1]]
        assert spans[0].start == 0 and spans[-1].stop == len(ids)
        if row["truncated"]:
            continue
        checked += 1
        texts = {
            (s.turn, s.field): tok.decode(ids[s.start : s.stop]) for s in spans if s.kind == "text"
        }
        original = source[row["id"]]
        for t in range(row["turns"]):
            for f, name in enumerate(("prompt", "response_a", "response_b")):
                assert texts.get((t + 1, f), "") == (original[name][t] or "")
        row["ids"] = ids  # render_row, moved from cli.inspect, still marks the turns
        assert render_row(row, tok, template, template.marker).count("----- turn") == row["turns"]
    assert checked > 10


def test_dropped_rows_by_reason(client, dataset):
    dropped = pl.read_parquet(dataset / "dropped.parquet")
    counts = dict(dropped["reason"].value_counts().iter_rows())
    assert set(counts) == {"identical", "missing_id", "bad_labels", "duplicate"}
    page = _get(client, "/datasets/browse/dropped")
    for reason, n in counts.items():
        assert re.search(rf"reason={reason}\">{reason}</a></td><td class=\"n\">{n}<", page)
    page = _get(client, "/datasets/browse/dropped?reason=missing_id")
    assert page.count("id is null") == counts["missing_id"]
    assert _get(client, "/datasets/browse").count("Dropped rows") == 1
    assert client.get("/datasets/browse/dropped?reason=nope").status_code == 400
    assert client.get("/datasets/browse/dropped?reason=duplicate&page=9").status_code == 400


def test_texts_and_model_names_are_escaped(client, shards):
    rows = shards.filter(pl.col("model_a").is_in(XSS[:2]))["index"].to_list()
    by_id = dict(zip(shards["id"], shards["index"]))
    pages = [_get(client, "/datasets/browse?q=script"), _get(client, "/datasets/browse?q=onerror")]
    pages += [
        _get(client, f"/datasets/browse/rows/{i}") for i in (rows[0], by_id["7"], by_id["11"])
    ]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
        assert 'href="javascript' not in page and "<script" not in page.lower().replace(
            "&lt;script", ""
        )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in pages[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[-1]  # in the prompt
    assert "javascript:alert(3)" in pages[-2]  # as text, in the long answer


@pytest.mark.parametrize(
    "url, status, says",
    [
        ("/datasets/nope", 404, "no dataset named"),
        ("/datasets/browse/rows/100000", 404, "has no row 100000"),
        ("/datasets/browse/rows/-1", 404, ""),
        ("/datasets/nope/rows/0", 404, "no dataset named"),
        ("/datasets/nope/dropped", 404, "no dataset named"),
        ("/datasets/browse?fold=7", 400, "fold: 7 is outside [0, 2]"),
        ("/datasets/browse?fold=x", 400, "fold: 'x' is not a whole number"),
        ("/datasets/browse?label=win", 400, "label: 'win' is not one of"),
        ("/datasets/browse?source=%3Cscript%3E", 400, "source:"),
        ("/datasets/browse?truncated=maybe", 400, "truncated"),
        ("/datasets/browse?turns_min=3&turns_max=1", 400, "turns_min is greater"),
        ("/datasets/browse?page=0", 400, "page: 0 is outside"),
        ("/datasets/browse?q=" + "x" * 201, 400, "at most 200"),
        ("/datasets/browse?color=red", 400, "color: not a filter"),
    ],
)
def test_bad_requests(client, url, status, says):
    r = client.get(url)
    assert r.status_code == status
    assert says in r.text and "Traceback" not in r.text
    assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.slow
def test_a_page_of_a_large_dataset_reads_only_its_rows(tmp_path_factory):
    """200k rows in 13 shards: the first page reads the text columns of the
    first shard's page rows and no ids; a page at the end those of the last
    shard; a row page the ids of its own shard only."""
    path = write_big_dataset(tmp_path_factory.mktemp("big"), 200_000, shard_rows=16384)
    table = DatasetTable(path)
    facets = table.facets()
    page = table.query(table.parse({}))
    first = page.rows
    assert page.total == 200_000 and [r["index"] for r in page.rows] == list(range(50))
    assert list(table.reads) == [(0, ("id", "model_a", "model_b", "language"), 50)]
    assert not table.small_read  # the first page reads only its shard's small columns
    assert table.query(table.parse({"page": "4000"})).rows[-1]["index"] == 199_999
    assert not table.small_read
    table.reads.clear()
    page = table.query(table.parse({"language": "de", "fold": "2", "page": "200"}))
    assert page.total == 10_000 and page.rows[-1]["index"] == 199_997
    assert {r["language"] for r in page.rows} == {"de"} and {r["fold"] for r in page.rows} == {2}
    assert [(shard, n) for shard, _, n in table.reads] == [(12, 50)]
    assert table.small_read
    # read either way, the first page and the filters' values are the same
    assert table.query(table.parse({})).rows == first and table.facets() == facets
    assert facets["languages"] == [("de", 50_000), ("en", 50_000), ("fr", 50_000), (None, 50_000)]
    table.reads.clear()
    row = table.row(150_000)
    assert row["id"] == "r150000"
    assert {shard for shard, _, _ in table.reads} == {150_000 // 16384}
    assert all(n == 1 for _, _, n in table.reads)


def test_a_dataset_without_metadata(serve_dataset):
    """The shared fixture's dataset has no language column: every row's
    language is none, and its pages open."""
    with TestClient(create_app(Catalog.from_paths([], [serve_dataset]))) as c:
        page = _get(c, "/datasets/ds")
        rows = pq.read_metadata(serve_dataset / "data-00000.parquet").num_rows
        assert (
            _total(page) == rows
            and "language" not in pq.read_schema(serve_dataset / "data-00000.parquet").names
        )
        assert _total(_get(c, "/datasets/ds?language=none")) == rows
        assert c.get("/datasets/ds?language=en").status_code == 400
        assert 'id="swapped"' in _get(c, "/datasets/ds/rows/0")


def test_a_broken_shard_is_a_500_that_says_why(tmp_path, dataset):
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    (broken / "data-00000.parquet").write_bytes(b"not parquet")
    with TestClient(create_app(Catalog.from_paths([], [broken]))) as c:
        for url in ("/datasets/broken", "/datasets/broken?fold=1", "/datasets/broken/rows/0"):
            r = c.get(url)
            assert r.status_code == 500, url
            assert "data-00000.parquet" in r.text and "Traceback" not in r.text
    (broken / "dropped.parquet").write_bytes(b"not parquet either")
    with TestClient(create_app(Catalog.from_paths([], [broken]))) as c:
        r = c.get("/datasets/broken/dropped")
        assert r.status_code == 500 and "dropped.parquet" in r.text


def test_a_text_search_that_stops_for_time_carries_on(client, dataset, shards, monkeypatch):
    """Ten rows decoded a request: the page says how far it got and links
    to search further (the same page) until the scan ends; the count is a
    lower bound until then, and the rows found are the right ones."""
    monkeypatch.setattr(tables, "SCAN_SECONDS", 0.0)
    monkeypatch.setattr(tables, "SCAN_CHUNK", 10)
    tok = af.Tokenizer.from_file(dataset / "tokenizer.json")
    texts = [tok.decode(np.frombuffer(b, "<i4").tolist()) for b in shards["input_ids"]]
    want = [i for i, t in enumerate(texts) if "question lamp" in t]
    assert 0 < len(want) < 50
    url, seen = "/datasets/browse?text=question+lamp&fold=", []
    for _ in range(20):
        page = _get(client, url)
        seen.append((_total(page), _shown(page)))
        if 'data-exact="yes"' in page:
            break
        assert "at least" in page and "decoded" in page
        url = html.unescape(re.search(r'<a class="more" href="([^"]+)"', page).group(1))
    assert seen[-1] == (len(want), want) and len(seen) == -(-len(shards) // 10)
    assert all(shown == want[: len(shown)] for _, shown in seen)


def test_a_dataset_built_without_swap_shows_one_order(tmp_path):
    path = build_rows(keyword_rows(12, 1), tmp_path, "single", max_length=128)
    with TestClient(create_app(Catalog.from_paths([], [path]))) as c:
        page = _get(c, "/datasets/single/rows/3")
        assert 'id="original"' in page and 'id="swapped"' not in page
        assert _total(_get(c, "/datasets/single?truncated=no")) == len(
            pq.read_table(path / "data-00000.parquet", filters=[("truncated", "==", False)])
        )
