"""Chat templates: `af.ChatTemplate` against transformers'
`apply_chat_template`, in the same process, on the same conversations.

The conversations are the 1,000 rows of the shared Kaggle sample, each as a
multi-turn chat (prompt turn i as the user, response_a turn i as the
assistant). Ids are checked equal first. Then, per tokenizer, the best of
`--repeat` runs of rendering all of them (tokenize=False) and of rendering
and encoding them (tokenize=True); our word cache is cleared before every
run, so each starts cold. One thread for both.

Then the encoder's chat layout (`af.Encoder(template="chat")`, issue 20):
every row gives two sequences, prompt turns with response_a's and with
response_b's, against `apply_chat_template(tokenize=True)` called on the two
conversations of each row; ids checked equal first (no budget, special
tokens matched in the texts as transformers does), then timed; rows/s counts
input rows, MB/s the UTF-8 bytes of both rendered conversations. Also our
encoder under a 2,048-token budget (the one a training set uses).

    python benches/bench_chat_template.py --repeat 3
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
from pathlib import Path  # noqa: E402

import transformers  # noqa: E402

import _peers  # noqa: E402
import arena_fast as af  # noqa: E402
from arena_fast import _core  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ROWS = SHARED / "data" / "kaggle_train_sample1000.csv"


def conversations(path: Path) -> list[list[dict]]:
    """Each row's prompt and response_a turns, interleaved as a chat."""
    chats = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            prompts = json.loads(row["prompt"])
            answers = json.loads(row["response_a"])
            chat = []
            for p, a in zip(prompts, answers):
                chat.append({"role": "user", "content": p or ""})
                chat.append({"role": "assistant", "content": a or ""})
            chats.append(chat)
    return chats


def arena_rows(path: Path) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """The prompt, response_a and response_b turns of each row (nulls as "")."""
    columns: tuple[list, list, list] = ([], [], [])
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            turns = [json.loads(row[c]) for c in ("prompt", "response_a", "response_b")]
            n = min(len(t) for t in turns)
            for column, cell in zip(columns, turns):
                column.append([t or "" for t in cell[:n]])
    return columns


def _chat(prompts: list[str], answers: list[str]) -> list[dict]:
    chat = []
    for p, a in zip(prompts, answers):
        chat += [{"role": "user", "content": p}, {"role": "assistant", "content": a}]
    return chat


def run_encoder(name: str, rows, repeat: int) -> dict:
    """The encoder's chat layout against apply_chat_template per side."""
    directory = SHARED / "tokenizers" / name
    hf = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    tokenizer = af.Tokenizer.from_file(directory)
    exact = af.Encoder(tokenizer, template="chat", split_special_tokens=False, max_length=2**31 - 1)
    budget = af.Encoder(tokenizer, template="chat", max_length=2048)
    prompts, a, b = rows
    sides = [(p, x) for p, xa, xb in zip(prompts, a, b) for x in (xa, xb)]
    out = exact.encode(prompts, a, b)
    for i, (p, x) in enumerate(sides):
        want = hf.apply_chat_template(_chat(p, x), tokenize=True, return_dict=False)
        assert out[i].tolist() == list(want), (name, i)
    text_bytes = sum(
        len(hf.apply_chat_template(_chat(p, x), tokenize=False).encode()) for p, x in sides
    )
    cold = _core.clear_word_cache
    times = {
        "encoder_ours": _peers.best_of(repeat, lambda: exact.encode(prompts, a, b), before=cold),
        "encoder_ours_2048": _peers.best_of(
            repeat, lambda: budget.encode(prompts, a, b), before=cold
        ),
        "encoder_hf": _peers.best_of(
            repeat,
            lambda: [
                hf.apply_chat_template(_chat(p, x), tokenize=True, return_dict=False)
                for p, x in sides
            ],
        ),
    }
    n = len(prompts)
    return {
        "tokenizer": name,
        "rows": n,
        "sequences": len(sides),
        "tokens": int(out.lengths.sum()),
        "mbytes": round(text_bytes / 1e6, 2),
        **{k: round(v, 4) for k, v in times.items()},
        **{f"{k}_rows_per_s": round(n / v) for k, v in times.items()},
        **{f"{k}_mb_per_s": round(text_bytes / 1e6 / v, 2) for k, v in times.items()},
        "encoder_ratio": round(times["encoder_hf"] / times["encoder_ours"], 2),
    }


def run(name: str, chats: list[list[dict]], repeat: int) -> dict:
    directory = SHARED / "tokenizers" / name
    hf = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    template = af.ChatTemplate.from_file(directory)
    tokenizer = af.Tokenizer.from_file(directory)
    for chat in chats:
        want = hf.apply_chat_template(chat, tokenize=True)["input_ids"]
        assert template.encode(tokenizer, chat) == list(want), chat
    tokens = sum(len(template.encode(tokenizer, chat)) for chat in chats)
    cold = _core.clear_word_cache
    times = {
        "render_ours": _peers.best_of(repeat, lambda: [template.render(c) for c in chats]),
        "render_hf": _peers.best_of(
            repeat, lambda: [hf.apply_chat_template(c, tokenize=False) for c in chats]
        ),
        "encode_ours": _peers.best_of(
            repeat, lambda: [template.encode(tokenizer, c) for c in chats], before=cold
        ),
        "encode_hf": _peers.best_of(
            repeat, lambda: [hf.apply_chat_template(c, tokenize=True) for c in chats]
        ),
    }
    return {
        "tokenizer": name,
        "conversations": len(chats),
        "messages": sum(len(c) for c in chats),
        "tokens": tokens,
        **{k: round(v, 4) for k, v in times.items()},
        "render_ratio": round(times["render_hf"] / times["render_ours"], 2),
        "encode_ratio": round(times["encode_hf"] / times["encode_ours"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tokenizer", action="append", choices=("gemma3", "llama3"))
    args = parser.parse_args()
    chats = conversations(ROWS)
    print(
        f"python {platform.python_version()}, transformers {transformers.__version__}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    rows = arena_rows(ROWS)
    for name in args.tokenizer or ("gemma3", "llama3"):
        print(json.dumps(run(name, chats, args.repeat)))
        print(json.dumps(run_encoder(name, rows, args.repeat)))


if __name__ == "__main__":
    main()
