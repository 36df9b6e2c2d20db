"""Prediction throughput with swap TTA: our `Judge` (a trained run bundle)
against pairjudge's `PairwiseJudge`, on the same weights of a tiny preset
(`--model`, default tiny-gemma2; issue 5, presets issue 16) and the same rows.

Setup (untimed): a run of the preset is trained with `af.train.train` for a
few steps on `arena-fast synth --seed 0` rows, built with the encoding that
pairjudge's `competition_v1` packing reproduces id for id (`rounds`,
`fourth_place`, `tokenize="joint"`, `split_special_tokens=False`; demo
tokenizer, max_length 512). The rows to score are other synth rows
(`--seed 1`), as turn lists, less those pairjudge refuses (null turns, ragged
turn lists, nothing left to compare).

pairjudge gets the same weights in memory: the stock
`AutoModelForSequenceClassification` of the preset's architecture
(`Gemma2ForSequenceClassification`, `Qwen2ForSequenceClassification`,
`Gemma3TextForSequenceClassification`; pairjudge runs whatever model it is
given) with the stock attention (eager for Gemma 2, which has no sdpa in
transformers; sdpa else), the run's body weights and our head as its `score`
(Linear with bias: `score` has none, so
pairjudge's `from_pretrained` would drop the bias; its documented constructor
`PairwiseJudge(model, tokenizer, packer_config, label_order)` takes the model
as it is), and the demo tokenizer as a `PreTrainedTokenizerFast` (pad
`<pad>`).

Timed, for both sides alike: text in, swap-TTA probabilities out, encoding
included. Ours: `Judge.compare_many(pairs)` (Rust encoding of both orders,
packed batches of `--max-tokens` with `arena_varlen`, TTA, per-pair records).
pairjudge: `PairwiseJudge.predict(df, swap_debias=True, batch_size=...)`
(Python packing of each order, length-sorted padded batches, TTA, records),
at its default batch size 4 and at a batch size matched to our tokens per
batch. Cases run interleaved, `--repeat` rounds, best of each.

Cases: `fourth_place` / `competition_v1` (the same ids: the probabilities are
compared), and each library's default encoding (ours `fair` / `split`,
pairjudge `balanced_v2`; different ids, timing only).

    python benches/bench_predict.py --rows 400 --out /tmp/results_predict.json
    python benches/bench_predict.py --model tiny-qwen2 --rows 80 --repeat 2
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import arena_fast as af  # noqa: E402
from _shared import (  # noqa: E402
    hf_classifier,
    hf_tokenizer,
    quiet_process,
    stock_attention,
    synth_dataset,
    write_results,
)
from arena_fast.base_model import PRESETS  # noqa: E402
from arena_fast.predict import Judge, load_run  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402

# The encoding pairjudge's competition_v1 packing reproduces id for id.
FOURTH_PLACE = {"template": "rounds", "strategy": "fourth_place"}
FOURTH_PLACE_ENCODER = {"tokenize": "joint", "split_special_tokens": False}


def make_run(args, root: Path) -> Path:
    """A briefly trained run bundle of `args.model` (so the head is not random)."""
    data = synth_dataset(
        root,
        args.train_rows,
        args.max_length,
        encoder=dict(FOURTH_PLACE_ENCODER),
        **FOURTH_PLACE,
    )
    run = root / "run"
    train(
        TrainConfig(
            data=str(data),
            fold=None,
            model=args.model,
            epochs=1,
            lr=3e-3,
            max_tokens=args.max_tokens,
            out=str(run),
            log_every=1000,
        )
    )
    return run


def load_rows(n: int, seed: int) -> list[tuple[list[str], list[str], list[str]]]:
    """Synth rows as turn lists, the rows pairjudge accepts: no null turn,
    as many answers as prompts."""
    from arena_fast.reference import parse_turn_list
    from arena_fast.synth import generate_rows

    rows = []
    for r in generate_rows(n, seed=seed):
        p, a, b = (parse_turn_list(r[c])[0] for c in ("prompt", "response_a", "response_b"))
        if len(p) == len(a) == len(b) and all(
            isinstance(t, str) for turns in (p, a, b) for t in turns
        ):
            rows.append((p, a, b))
    return rows


def best_of(fn, repeat: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), times, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny-gemma2", choices=PRESETS, help="the preset")
    ap.add_argument("--rows", type=int, default=400, help="synth rows to score (seed 1)")
    ap.add_argument("--train-rows", type=int, default=96, help="synth rows the run trains on")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--max-tokens", type=int, default=8192, help="our tokens per batch")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for all")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; best of each")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    quiet_process(args.threads)
    import pairjudge
    import pandas as pd
    import transformers
    from pairjudge import PackerConfig, PairPacker
    from pairjudge.judge import PairwiseJudge
    from pairjudge.validation import CLASSES

    work = Path(tempfile.mkdtemp(prefix="arena-fast-bench-predict-"))
    run = make_run(args, work)
    tok = hf_tokenizer()
    ours_model = load_run(run, tokenizer=af.Tokenizer.demo())[0]
    model = hf_classifier(ours_model, tok.pad_token_id, stock_attention(args.model))
    model.eval()
    judges = {
        fmt: PairwiseJudge(
            model,
            tok,
            PackerConfig(max_length=args.max_length, packing_format=fmt),
            label_order=CLASSES,
        )
        for fmt in ("competition_v1", "balanced_v2")
    }
    ours = Judge(run, max_tokens=args.max_tokens)
    ours_default = Judge(run, max_tokens=args.max_tokens)
    ours_default.encoder = af.Encoder(
        ours.encoder.tokenizer, template="rounds", strategy="fair", max_length=args.max_length
    )

    # Rows both libraries score: pairjudge refuses a pair with nothing left to
    # compare in either order under either packing.
    candidates = load_rows(args.rows, seed=1)
    packers = [PairPacker(tok, j.packer.config, label_mode="none") for j in judges.values()]
    rows = [
        (p, a, b)
        for p, a, b in candidates
        if all(k.pack(p, a, b).usable and k.pack(p, b, a).usable for k in packers)
    ]
    frame = pd.DataFrame(
        {
            "id": [str(i) for i in range(len(rows))],
            "prompt": [r[0] for r in rows],
            "response_a": [r[1] for r in rows],
            "response_b": [r[2] for r in rows],
        }
    )
    pairs = [
        {"id": str(i), "prompt": p, "response_a": a, "response_b": b}
        for i, (p, a, b) in enumerate(rows)
    ]
    n = len(rows)

    # Same ids? Our encoder (both orders) against pairjudge's packer.
    enc = ours.encoder.encode(*(list(c) for c in zip(*rows)), swap="both")
    pj = packers[0]
    theirs = [x for p, a, b in rows for x in (pj.pack(p, a, b), pj.pack(p, b, a))]
    same_ids = enc.to_lists() == [t.input_ids for t in theirs]
    mean_length = float(enc.lengths.mean())
    matched_bs = max(1, round(args.max_tokens / mean_length))
    setup = {
        "model": args.model,
        "pairjudge_attention": stock_attention(args.model),
        "rows_scored": n,
        "rows_generated": args.rows,
        "sequences": 2 * n,
        "tokens_both_orders": int(enc.lengths.sum()),
        "mean_length": mean_length,
        "ids_identical_fourth_place_vs_competition_v1": same_ids,
        "pairjudge_matched_batch_size": matched_bs,
        "our_layout": ours.layout,
        "our_attention": ours.config.attn_implementation or "arena_varlen (default)",
    }
    print(json.dumps(setup), flush=True)

    def ours_probs(records):
        return np.array(
            [[r["winner_model_a"], r["winner_model_b"], r["winner_tie"]] for r in records]
        )

    def pj_probs(records):
        return np.array([[r["probabilities"][c] for c in CLASSES] for r in records])

    cases = [
        ("fourth_place (ours) / competition_v1 (pairjudge)", ours, "competition_v1"),
        ("defaults: fair/split (ours) / balanced_v2 (pairjudge)", ours_default, "balanced_v2"),
    ]
    # Warm-up (untimed): allocator and lazy initialisation, both sides.
    ours.compare_many(pairs[:16])
    judges["competition_v1"].predict(frame.iloc[:16], swap_debias=True, batch_size=4)
    times: dict[str, list[float]] = {}
    outputs: dict[str, object] = {}
    for rnd in range(args.repeat):
        for name, judge, fmt in cases:
            runs = [
                ("ours", lambda j=judge: j.compare_many(pairs)),
                (
                    "pairjudge bs 4",
                    lambda f=fmt: judges[f].predict(frame, swap_debias=True, batch_size=4),
                ),
                (
                    f"pairjudge bs {matched_bs}",
                    lambda f=fmt: judges[f].predict(frame, swap_debias=True, batch_size=matched_bs),
                ),
            ]
            for who, fn in runs:
                _, t, out = best_of(fn, 1)
                key = f"{name} | {who}"
                times.setdefault(key, []).append(t[0])
                outputs[key] = out
                print(f"round {rnd}: {key}: {t[0]:.2f} s, {n / t[0]:,.1f} rows/s", flush=True)

    # Where the time goes (one run each): encoding both orders vs the rest.
    cols = [list(c) for c in zip(*rows)]
    pj_judge = judges["competition_v1"]
    breakdown = {
        "ours_encode_both_orders_s": best_of(lambda: ours.encoder.encode(*cols, swap="both"), 1)[0],
        "pairjudge_pack_both_orders_s": best_of(
            lambda: (pj_judge._pack_frame(frame), pj_judge._pack_frame(pj_judge._swap(frame))),
            1,
        )[0],
    }
    setup["breakdown_fourth_place"] = breakdown
    results = []
    for name, _, _ in cases:
        ours_key = f"{name} | ours"
        p_ours = ours_probs(outputs[ours_key])
        for who in ("pairjudge bs 4", f"pairjudge bs {matched_bs}"):
            key = f"{name} | {who}"
            p_pj = pj_probs(outputs[key])
            diff = np.abs(p_ours - p_pj)
            results.append(
                {
                    "case": name,
                    "peer": who,
                    "ours_seconds": times[ours_key],
                    "peer_seconds": times[key],
                    "ours_rows_per_s": n / min(times[ours_key]),
                    "peer_rows_per_s": n / min(times[key]),
                    "ratio": min(times[key]) / min(times[ours_key]),
                    "max_abs_prob_diff": float(diff.max()),
                    "mean_abs_prob_diff": float(diff.mean()),
                    "same_verdict_share": float(
                        (p_ours.argmax(axis=1) == p_pj.argmax(axis=1)).mean()
                    ),
                }
            )
    print(
        f"\n{args.model}: {n} rows ({2 * n} sequences with the swaps, "
        f"{setup['tokens_both_orders']:,} tokens), "
        f"max_length {args.max_length}, {args.threads} thread(s), torch {torch.__version__}, "
        f"transformers {transformers.__version__}, pairjudge {pairjudge.__version__}, "
        f"best of {args.repeat}; ids identical (fourth_place vs competition_v1): {same_ids}"
    )
    print(
        f"encoding both orders (fourth_place / competition_v1): ours "
        f"{breakdown['ours_encode_both_orders_s']:.3f} s, pairjudge "
        f"{breakdown['pairjudge_pack_both_orders_s']:.3f} s"
    )
    print(
        "| encoding | peer | ours rows/s | peer rows/s | ratio | max abs prob diff "
        "| same verdict | ours s (runs) | peer s (runs) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for r in results:
        o = ", ".join(f"{s:.2f}" for s in r["ours_seconds"])
        t = ", ".join(f"{s:.2f}" for s in r["peer_seconds"])
        print(
            f"| {r['case']} | {r['peer']} | {r['ours_rows_per_s']:,.1f} "
            f"| {r['peer_rows_per_s']:,.1f} | **{r['ratio']:.2f}x** "
            f"| {r['max_abs_prob_diff']:.1e} | {r['same_verdict_share']:.3f} | {o} | {t} |"
        )
    write_results(args.out, args, setup, results, pairjudge=pairjudge.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
