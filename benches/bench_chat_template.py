"""Chat templates: `af.ChatTemplate` against transformers'
`apply_chat_template`, in the same process, on the same conversations.

The conversations are the 1,000 rows of the shared Kaggle sample, each as a
multi-turn chat (prompt turn i as the user, response_a turn i as the
assistant). Ids are checked equal first. Then, per tokenizer, the best of
`--repeat` runs of rendering all of them (tokenize=False) and of rendering
and encoding them (tokenize=True); our word cache is cleared before every
run, so each starts cold. One thread for both.

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
    for name in args.tokenizer or ("gemma3", "llama3"):
        print(json.dumps(run(name, chats, args.repeat)))


if __name__ == "__main__":
    main()
