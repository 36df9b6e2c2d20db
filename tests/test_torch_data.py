"""arena_fast.torch data side: samplers over plans, batches as tensors that
share the collators' memory, DataLoader workers (fork after the encoder used
its threads), epochs and ranks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter

import numpy as np
import pytest

import arena_fast as af
from arena_fast.synth import generate_rows
from strategies import train_extra

torch = train_extra("torch")
aft = train_extra("arena_fast.torch")


@pytest.fixture(scope="module")
def encoded() -> af.Encoded:
    rows = generate_rows(60, seed=3)
    enc = af.Encoder(af.Tokenizer.demo(), max_length=256, num_threads=2)
    return enc.encode(
        [r["prompt"] for r in rows],
        [r["response_a"] for r in rows],
        [r["response_b"] for r in rows],
        swap="both",
    )


@pytest.fixture(scope="module")
def labels(encoded: af.Encoded) -> np.ndarray:
    return np.arange(len(encoded), dtype=np.int64) % 3


@pytest.mark.parametrize("layout", ["packed", "padded"])
def test_loader_yields_every_row_once_with_its_label(encoded, labels, layout):
    loader = aft.make_loader(
        encoded, labels, layout=layout, max_tokens=1024, pad_id=0, seed=5, world_size=1
    )
    seen: Counter = Counter()
    for batch in loader:
        ids = batch["input_ids"]
        last = batch["last_index"].tolist()
        if layout == "packed":
            cu = batch["cu_seq_lens_q"].tolist()
            seqs = [ids[0, a:b].tolist() for a, b in zip(cu[:-1], cu[1:])]
            assert last == [b - 1 for b in cu[1:]]
            assert "attention_mask" not in batch
        else:
            mask = batch["attention_mask"].bool()
            seqs = [ids[i][mask[i]].tolist() for i in range(len(ids))]
            assert last == [len(s) - 1 for s in seqs]
        seen.update(zip(map(tuple, seqs), batch["labels"].tolist()))
    # Rows can repeat (a swap of two identical answers), so compare multisets.
    expected = Counter((tuple(encoded[i].tolist()), int(labels[i])) for i in range(len(encoded)))
    assert seen == expected


def test_tensors_share_the_collated_memory(encoded):
    batch = af.collate_packed(encoded, [0, 1])
    tensors = aft.to_torch(batch)
    batch["input_ids"][0, 0] = -7
    assert tensors["input_ids"][0, 0].item() == -7
    assert tensors["max_length_q"] == batch["max_length_q"]


def test_epochs_reshuffle_and_repeat(encoded):
    sampler = aft.PlanSampler(encoded, max_tokens=600, layout="packed", seed=1)
    first = [b.tolist() for b in sampler]
    again = [b.tolist() for b in sampler]
    sampler.set_epoch(1)
    second = [b.tolist() for b in sampler]
    assert first == again
    assert first != second
    assert sorted(map(sorted, first)) == sorted(map(sorted, second))  # same packs, new order


@pytest.mark.parametrize("layout", ["packed", "padded"])
def test_ranks_split_the_rows_in_equal_steps(encoded, layout):
    steps, rows = set(), []
    for rank in range(3):
        sampler = aft.PlanSampler(
            encoded, max_tokens=800, layout=layout, seed=2, world_size=3, rank=rank
        )
        steps.add(len(sampler))
        for idx in sampler:
            rows.extend(idx.tolist())
    assert len(steps) == 1
    assert sorted(rows) == list(range(len(encoded)))


@pytest.mark.parametrize("layout", ["packed", "padded"])
def test_make_plan_is_the_layouts_planner(encoded, layout):
    options = dict(seed=4, epoch=2, world_size=2, rank=1)
    ours = aft.make_plan(encoded, 700, layout, **options)
    planner = af.plan_packs if layout == "packed" else af.plan_batches
    assert [s.tolist() for s in ours] == [s.tolist() for s in planner(encoded, 700, **options)]


@pytest.mark.parametrize("layout, max_rows", [("packed", None), ("packed", 3), ("padded", None)])
def test_inference_plan_takes_every_row_once_in_a_fixed_order(encoded, layout, max_rows):
    plan = aft.inference_plan(encoded, 700, layout, max_rows)
    steps = [s.tolist() for s in plan]
    assert sorted(i for s in steps for i in s) == list(range(len(encoded)))
    assert steps == [s.tolist() for s in aft.inference_plan(encoded, 700, layout, max_rows)]
    if max_rows is not None:
        assert max(map(len, steps)) <= max_rows
    if layout == "padded" or max_rows is not None:  # batches longest first
        longest = [int(encoded.lengths[s].max()) for s in steps]
        assert longest == sorted(longest, reverse=True)


def test_bad_settings_fail_at_construction(encoded):
    with pytest.raises(af.ConfigError):
        aft.PlanSampler(encoded, max_tokens=600, layout="ragged")
    with pytest.raises(af.ConfigError, match="pad_id"):
        aft.ArenaBatches(encoded, layout="padded")
    with pytest.raises(af.InputError, match="max_tokens"):
        aft.PlanSampler(encoded, max_tokens=10, layout="packed")


def test_default_layout_follows_the_attention_kernel():
    assert aft.default_layout("arena_varlen") == "packed"
    assert aft.default_layout("flash_attention_2") == "packed"
    assert aft.default_layout("sdpa") == "padded"
    assert aft.default_layout("eager") == "padded"


# The parent runs the encoder's thread pool, then forks DataLoader workers
# that collate and encode again: a child that waited on the parent's threads
# would hang, so the script runs under a timeout.
_FORK_SCRIPT = textwrap.dedent(
    """
    import numpy as np, torch
    import arena_fast as af
    import arena_fast.torch as aft
    from arena_fast.synth import generate_rows

    rows = generate_rows(40, seed=1)
    cols = [[r[c] for r in rows] for c in ("prompt", "response_a", "response_b")]
    enc = af.Encoder(af.Tokenizer.demo(), max_length=256, num_threads=2)
    encoded = enc.encode(*cols, swap="both")

    class Reencode(aft.ArenaBatches):
        def __getitem__(self, idx):
            again = enc.encode(*cols, swap="both")  # threads in the forked child
            assert again.input_ids.tolist() == encoded.input_ids.tolist()
            return super().__getitem__(idx)

    sampler = aft.PlanSampler(encoded, max_tokens=700, layout="packed")
    loader = torch.utils.data.DataLoader(
        Reencode(encoded), sampler=sampler, batch_size=None, num_workers=2,
        multiprocessing_context="fork",
    )
    total = sum(int(b["cu_seq_lens_q"][-1]) for b in loader)
    assert total == len(encoded.input_ids), (total, len(encoded.input_ids))
    print("ok", total)
    """
)


def test_forked_workers_after_threads_do_not_hang():
    done = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")
