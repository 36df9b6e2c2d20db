"""Gemma-2's attention soft-cap on the CPU: ``cap * tanh(x / cap)`` (what
`arena_fast.torch.attention.soft_cap` computes, as transformers' eager) against
``2 cap * sigmoid(2 x / cap) - cap`` (the same function), and the form the
eager path uses, ``tanh`` computed in place on its own scores (the same bits
as ``tanh``), in one process.

tiny-gemma2 (`load_classifier(seed=0)`, LoRA r=8, `arena_varlen`) runs a
training round (forward + backward of 4 packs of 6 sequences of 150-600
tokens) and a prediction round (the same packs, no grad) with each form,
the forms taken in turn within each round, so both see the same machine
load. Printed: the max logit difference between the forms and each form's
distance to float64 logits, then per round the ratio tanh time / this form's
time (> 1: faster than tanh) and its median.

    PYTHONPATH=python python benches/bench_softcap.py --rounds 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import arena_fast as af
import arena_fast.torch.attention as attention
from arena_fast.model import load_classifier


def tanh_cap(scores, scaling, cap, inplace=False):
    return torch.tanh(scores * scaling / cap) * cap  # the eager's very operations


def sigmoid_cap(scores, scaling, cap, inplace=False):
    return torch.sigmoid(scores * (2 * scaling / cap)) * (2 * cap) - cap


# The production form: in place on the eager path's own scores where
# autograd does not need them (the same bits as "tanh").
IN_PLACE = attention.soft_cap
FORMS = {"tanh": tanh_cap, "tanh in place": IN_PLACE, "sigmoid": sigmoid_cap}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
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
        attention.soft_cap = form
        model.decoder.to(dtype)
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(af.collate_packed(enc, idx)) for idx in packs]).double()
        model.decoder.to(torch.float32)
        return out

    exact = logits(tanh_cap, torch.float64)
    got = {name: logits(form, torch.float32) for name, form in FORMS.items()}
    print(f"max |logit| {float(exact.abs().max()):.3f}")
    print(f"max |sigmoid - tanh| {float((got['sigmoid'] - got['tanh']).abs().max()):.2e}")
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

    seconds = {name: {"train": [], "predict": []} for name in FORMS}
    for _ in range(args.rounds):
        for name, form in FORMS.items():
            attention.soft_cap = form
            for kind, run in (("train", train_round), ("predict", predict_round)):
                start = time.perf_counter()
                run()
                seconds[name][kind].append(time.perf_counter() - start)
    attention.soft_cap = IN_PLACE
    for kind in ("train", "predict"):
        base = np.array(seconds["tanh"][kind])
        for name in FORMS:
            ratios = base / np.array(seconds[name][kind])
            print(
                f"{kind:8s} {name:8s} median {np.median(seconds[name][kind]):.3f} s, "
                f"tanh / this per round {np.round(ratios, 2).tolist()} "
                f"(median {np.median(ratios):.2f})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
