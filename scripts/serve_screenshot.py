"""The README's screenshot of `arena-fast serve`: the Compare page with a
real result, taken in headless Chromium as the browser tests take theirs.

    arena-fast demo --out /tmp/demo_serve
    .venv/bin/python scripts/serve_screenshot.py --demo /tmp/demo_serve

It starts `arena-fast serve --run DEMO/run --data DEMO/data` on a free
loopback port, types into Compare the texts of a row of the dataset (by
default a short one-turn row in Latin text that the budget cut, so the page
shows a cut), compares them with the run, and writes the top of the page,
resized and reduced to a palette, as a PNG under 200 KB
(`docs/images/serve_compare.png`). Needs Debian's `chromium` and
`chromium-driver`, Selenium and Pillow."""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Optional

import pyarrow.parquet as pq
from PIL import Image

from arena_fast.dataset import read_manifest
from arena_fast.predict import source_rows

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))

from browser_support import serving, snapshot, start_chrome, wait_for  # noqa: E402

MAX_BYTES = 200_000
FIELDS = ("prompt", "response_a", "response_b")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--demo",
        type=Path,
        default=Path("/tmp/demo_serve"),
        help="the folder `arena-fast demo --out` wrote (its run/ and data/)",
    )
    p.add_argument(
        "--row",
        type=int,
        default=None,
        help="the dataset row whose texts are compared (default: a short row that was cut)",
    )
    p.add_argument("--width", type=int, default=1100, help="the PNG's width in pixels")
    p.add_argument(
        "--height",
        type=int,
        default=1500,
        help="the page's height kept, in CSS pixels (from the top)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "serve_compare.png")
    return p.parse_args(argv)


def shrink(png: bytes, width: int, height: int) -> bytes:
    """The top `height` pixels of `png`, resized to `width`, as a palette PNG."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.crop((0, 0, image.width, min(image.height, height)))
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    out = io.BytesIO()
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, "PNG", optimize=True)
    return out.getvalue()


def latin(texts: list) -> bool:
    """Whether `texts` are in Latin script (the fonts every machine has)."""
    return all(ord(c) < 0x250 for text in texts for c in text)


def pick_row(data: Path, rows) -> int:
    """Of the one-turn rows of `data` that the budget cut, with no flag
    (empty text), no repair and Latin text only, the one that needed the
    fewest tokens: its encoded input shows a cut, and the page stays short."""
    best, best_length, offset = None, None, 0
    for shard in read_manifest(data)["shards"]:
        columns = ["turns", "truncated", "flags", "repairs", "full_length"]
        table = pq.read_table(data / shard["file"], columns=columns).to_pydict()
        for i, (turns, cut, flags, repairs, full) in enumerate(zip(*table.values())):
            if turns != 1 or not cut or flags or repairs:
                continue
            if (best_length is None or full < best_length) and latin(texts(rows, offset + i)):
                best, best_length = offset + i, full
        offset += shard["rows"]
    if best is None:
        raise SystemExit(f"{data}: no one-turn row in Latin text was cut; pass --row")
    return best


def texts(rows, row: int) -> list:
    """Row `row`'s texts, prompt and answers, turn after turn."""
    record = rows.row(row, named=True)
    return [t for name in FIELDS for t in json.loads(record[name]) if t is not None]


def row_texts(rows, row: int) -> dict:
    """Row `row`'s prompt and answers as its input holds them (whole, not
    the kept tokens decoded), turn by turn."""
    record = rows.row(row, named=True)
    return {name: [t or "" for t in json.loads(record[name])] for name in FIELDS}


# Put each turn's texts in the form's textareas (as typed or pasted).
FILL_JS = """
const [pair, turns] = arguments;
const add = document.getElementById('add-turn');
while (document.querySelectorAll('#turns fieldset.turn').length < turns) add.click();
for (const [name, texts] of Object.entries(pair)) {
  document.querySelectorAll(`#compare-form textarea[name='${name}']`)
    .forEach((box, i) => { box.value = texts[i]; });
}
"""


def take(demo: Path, row: Optional[int], workdir: Path) -> bytes:
    """The Compare page's PNG, full length, with row `row`'s texts compared."""
    run, data = demo / "run", demo / "data"
    for path in (run, data):
        if not path.is_dir():
            raise SystemExit(f"{path} is missing: run `arena-fast demo --out {demo}` first")
    rows = source_rows(data)  # the texts, from the inputs the manifest names
    pair = row_texts(rows, pick_row(data, rows) if row is None else row)
    with serving([run], [data], workdir / "server.log") as url:
        browser = start_chrome(window=(1280, 1000))
        try:
            browser.get(f"{url}/compare?run={run.name}")
            wait_for(browser, "#compare-form")
            browser.execute_script(FILL_JS, pair, len(pair["prompt"]))
            browser.find_element("id", "compare-submit").click()
            wait_for(browser, f"article.run-result[data-run='{run.name}'] td.prob")
            wait_for(browser, "#encodings article.encoding")
            browser.execute_script("document.activeElement && document.activeElement.blur()")
            return snapshot(browser, "readme-compare").read_bytes()
        finally:
            browser.quit()


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            full = take(args.demo, args.row, Path(tmp))
        except BaseException as exc:  # pytest's skip outside pytest: say why, one line
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            print(f"serve_screenshot: {exc}", file=sys.stderr)
            return 1
    png = shrink(full, args.width, args.height)
    if len(png) > MAX_BYTES:
        print(
            f"serve_screenshot: {len(png)} bytes, over {MAX_BYTES}: pass a smaller "
            "--width or --height",
            file=sys.stderr,
        )
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(png)
    print(f"{args.out}: {len(png)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
