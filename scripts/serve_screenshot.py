"""The README's screenshot of `arena-fast serve`: the Compare page with a
real result, taken in headless Chromium as the browser tests take theirs.

    arena-fast demo --out /tmp/demo_serve
    .venv/bin/python scripts/serve_screenshot.py --demo /tmp/demo_serve

It starts `arena-fast serve --run DEMO/run --data DEMO/data` on a free
loopback port, opens Compare prefilled with a row of the dataset
(`/compare?dataset=data&row=N`), compares it with the run, and writes the
top of the page, resized and reduced to a palette, as a PNG under 200 KB
(`docs/images/serve_compare.png`). Needs Debian's `chromium` and
`chromium-driver`, Selenium and Pillow."""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path
from typing import Optional

import pyarrow.parquet as pq
from PIL import Image

from arena_fast.dataset import read_manifest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))

from browser_support import serving, snapshot, start_chrome, wait_for  # noqa: E402

MAX_BYTES = 200_000


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
        help="the dataset row to compare (default: the first uncut row of the most turns)",
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


def pick_row(data: Path) -> int:
    """The first row of `data` of the most turns that the budget did not cut
    and that has no flag (empty text) and no repair: its prefilled texts are
    then the row's own, whole."""
    best, best_turns, offset = 0, 0, 0
    for shard in read_manifest(data)["shards"]:
        columns = ["turns", "truncated", "flags", "repairs"]
        table = pq.read_table(data / shard["file"], columns=columns).to_pydict()
        for i, (turns, cut, flags, repairs) in enumerate(zip(*table.values())):
            if not (cut or flags or repairs) and turns > best_turns:
                best, best_turns = offset + i, turns
        offset += shard["rows"]
    return best


def take(demo: Path, row: Optional[int], workdir: Path) -> bytes:
    """The Compare page's PNG, full length, with row `row` compared."""
    run, data = demo / "run", demo / "data"
    for path in (run, data):
        if not path.is_dir():
            raise SystemExit(f"{path} is missing: run `arena-fast demo --out {demo}` first")
    row = pick_row(data) if row is None else row
    with serving([run], [data], workdir / "server.log") as url:
        browser = start_chrome(window=(1280, 1000))
        try:
            browser.get(f"{url}/compare?dataset={data.name}&row={row}&run={run.name}")
            wait_for(browser, "#compare-form")
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
