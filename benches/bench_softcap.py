"""Gemma-2's attention soft-cap on the CPU: the forms of ``cap * tanh(x /
cap)`` that `arena_fast.torch.softcap` could compute in place on a block's
scores (``tanh``: transformers' eager operations; ``expm1``: the production
form, ``expm1(2y) / (expm1(2y) + 2)``; ``sigmoid``: ``2 cap * sigmoid(2y) -
cap``, the same function), and optionally a whole older attention module
(``--baseline``: an ``attention.py`` from git, e.g. before the query blocks
of issue 19), all in one process.

tiny-gemma2 (`load_classifier(seed=0)`, LoRA r=8, `arena_varlen`) runs a
training round (forward + backward of 4 packs of 6 sequences of 150-600
tokens) and a prediction round (the same packs, no grad) with each form,
the forms taken in turn within each round, so all see the same machine
load. Printed: the max logit difference between the forms and each form's
distance to float64 logits, then per round the ratio (first form's time) /
(this form's time) (> 1: faster than the first) and its median.

    PYTHONPATH=python python benches/bench_softcap.py --rounds 5
    git show fb27a61~1:python/arena_fast/torch/attention.py > /tmp/attention_before.py
    PYTHONPATH=python python benches/bench_softcap.py --rounds 5 --baseline /tmp/attention_before.py
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
import torch
from transformers import AttentionInterface

import arena_fast as af
import arena_fast.torch.softcap as softcap
from arena_fast.model import load_classifier
from arena_fast.torch.attention import NAME, arena_varlen_attention


def tanh_cap(scores, scaling, cap):
    return scores.mul_(scaling).div_(cap).tanh_().mul_(cap)  # the eager's very operations


def sigmoid_cap(scores, scaling, cap):
    return scores.mul_(2 * scaling / cap).sigmoid_().mul_(2 * cap).sub_(cap)


EXPM1 = softcap._cap_  # the production form


def load_baseline(path: str):
    """`arena_varlen_attention` of another attention.py (self-contained, as
    before softcap.py existed)."""
    spec = importlib.util.spec_from_file_location("attention_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.arena_varlen_attention


def use(form) -> None:
    cap, attention = form
    softcap._cap_ = cap
    AttentionInterface.register(NAME, attention)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline", help="an older attention.py, timed as the first form")
    args = parser.parse_args(argv)
    forms = {"tanh": (tanh_cap, arena_varlen_attention)}
    if args.baseline:
        forms = {"baseline": (EXPM1, load_baseline(args.baseline)), **forms}
    forms.update(
        expm1=(EXPM1, arena_varlen_attention), sigmoid=(sigmoid_cap, arena_varlen_attention)
    )
    torch.set_num_threads(args.threads)
    tok = af.Tokenizer.demo()
    rng = np.random.default_rng(0)
    lengths = rng.integers(150, 600, size=24)
    rows = [rng.integers(3, tok.vocab_size, size=int(n)).tolist() for n in lengths]
    enc = af.Encoded.from_lists(rows)
    packs = [np.arange(i, i + 6) for i in range(0, 24, 6)]
    labels = rng.integers(0, 3, size=24)
    model = load_classifier("tiny-gemma2", tokenizer=tok, lora={"r": 8, "dropout": 0.0}, seed=0)
    opt = torch.optim.AdamW([p for _, p in model.trainable_parameters()], lr=1e-4)
    with torch.no_grad():  # adapters that matter
        g = torch.Generator().manual_seed(7)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def logits(form, dtype):
        use(form)
        model.decoder.to(dtype)
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(af.collate_packed(enc, idx)) for idx in packs]).double()
        model.decoder.to(torch.float32)
        return out

    exact = logits(forms["tanh"], torch.float64)
    got = {name: logits(form, torch.float32) for name, form in forms.items()}
    print(f"max |logit| {float(exact.abs().max()):.3f}")
    for name in ("expm1", "sigmoid"):
        print(f"max |{name} - tanh| {float((got[name] - got['tanh']).abs().max()):.2e}")
    for name, value in got.items():
        print(f"max |{name} (float32) - float64| {float((value - exact).abs().max()):.2e}")

    def train_round():
        model.train()
        for idx in packs:
            batch = af.collate_packed(enc, idx, labels=labels)
            loss = torch.nn.functional.cross_entropy(model(batch), torch.as_tensor(batch["labels"]))
            opt.zero_grad()
            loss.backward()

    def predict_round():
        model.eval()
        with torch.no_grad():
            for idx in packs:
                model(af.collate_packed(enc, idx))

    seconds = {name: {"train": [], "predict": []} for name in forms}
    for _ in range(args.rounds):
        for name, form in forms.items():
            use(form)
            for kind, run in (("train", train_round), ("predict", predict_round)):
                start = time.perf_counter()
                run()
                seconds[name][kind].append(time.perf_counter() - start)
    use(forms["expm1"])
    first = next(iter(forms))
    for kind in ("train", "predict"):
        base = np.array(seconds[first][kind])
        for name in forms:
            ratios = base / np.array(seconds[name][kind])
            print(
                f"{kind:8s} {name:8s} median {np.median(seconds[name][kind]):.3f} s, "
                f"{first} / this per round {np.round(ratios, 2).tolist()} "
                f"(median {np.median(ratios):.2f})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
