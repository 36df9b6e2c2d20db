"""Training with Hugging Face `transformers.Trainer` on arena_fast batches
(`af.torch.hf`) and `ArenaDataset.to_hf()` (issue 15, point 5): the Trainer's
own loop learns on packs, its evaluation scores every row as `af.infer`
does, predictions come back in dataset order, `report_to` logs, and the
`datasets` view keeps ids, labels, folds and token ids."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import train_extra

torch = train_extra("torch")
train_extra("transformers")
datasets = pytest.importorskip("datasets")

from transformers import DataCollatorWithPadding, Trainer, TrainingArguments  # noqa: E402

import arena_fast as af  # noqa: E402
from arena_fast import diagnostics, infer  # noqa: E402
from arena_fast.dataset import load_dataset  # noqa: E402
from arena_fast.model import load_classifier  # noqa: E402
from arena_fast.torch import PlanSampler  # noqa: E402
from arena_fast.torch.hf import (  # noqa: E402
    ArenaCollator,
    ArenaForSequenceClassification,
    ArenaTrainer,
    trainer_rows,
)
from keyword_rows import build_rows, keyword_rows  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """300 keyword rows, 3 folds, both A/B orders."""
    root = tmp_path_factory.mktemp("hf")
    return build_rows(keyword_rows(300, 0), root, max_length=96, folds=3, swap=True)


def _args(tmp_path, **kw) -> TrainingArguments:
    settings = dict(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    return TrainingArguments(**{**settings, **kw})


def _log_loss(pred) -> dict:
    probs = infer.probabilities(pred.predictions)
    labels = np.asarray(pred.label_ids, dtype=np.float64)
    return {"log_loss": diagnostics.log_loss(probs, labels)}


def _model(attn="arena_varlen"):
    tok = af.Tokenizer.demo()
    return load_classifier("tiny-gemma2", tokenizer=tok, attn_implementation=attn, seed=0)


@pytest.mark.slow
def test_trainer_steps_on_packs_lower_the_held_out_loss(dataset_dir, tmp_path):
    """The Trainer's own loop on our packs learns the keyword rule: the
    held-out loss falls well below chance (ln 3 = 1.0986) in 120 steps
    (6 epochs of 20 packs)."""
    train_set = load_dataset(dataset_dir, fold=0, split="train")
    valid = load_dataset(dataset_dir, fold=0, split="valid")
    trainer = ArenaTrainer(
        model=_model(),
        args=_args(
            tmp_path, max_steps=120, learning_rate=3e-3, max_grad_norm=0.0, logging_steps=30
        ),
        train_dataset=train_set,
        eval_dataset=valid,
        max_tokens=2048,
    )
    assert trainer.layout == "packed"  # arena_varlen: packs, as af.train picks
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert before > 1.05 and after < 0.8, (before, after)
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    assert len(losses) == 4 and all(np.isfinite(losses))


def test_evaluate_and_predict_match_af_infer(dataset_dir, tmp_path):
    """Packs reorder rows: eval metrics and predictions still belong to the
    right rows, and eval_loss is the mean over rows."""
    valid = load_dataset(dataset_dir, fold=1, split="valid")
    model = _model()
    expected = infer.evaluate(model, valid, "padded", 4096)
    for layout in ("packed", "padded"):
        trainer = ArenaTrainer(
            model=model,
            args=_args(tmp_path),
            eval_dataset=valid,
            compute_metrics=_log_loss,
            layout=layout,
            max_tokens=512,  # several batches of different sizes
        )
        metrics = trainer.evaluate()
        assert abs(metrics["eval_log_loss"] - expected["log_loss"]) < 1e-5, layout
        assert abs(metrics["eval_loss"] - expected["log_loss"]) < 1e-5, layout
        out = trainer.predict(valid)
        logits = infer.predict_logits(model, valid.encoded, "packed", 4096)
        np.testing.assert_allclose(out.predictions, logits, atol=1e-5)
        np.testing.assert_array_equal(out.label_ids, valid.labels)


def test_packed_and_padded_collation_give_the_same_logits(dataset_dir):
    data = load_dataset(dataset_dir, fold=0, split="valid")
    rows = data.to_hf().select(range(7))
    features = [rows[i] for i in range(len(rows))]
    model = ArenaForSequenceClassification(_model()).eval()
    packed = ArenaCollator("packed")(features)
    padded = ArenaCollator("padded", pad_id=model.pad_id, side="left")(features)
    with torch.no_grad():
        a = model(**packed)
        b = model(**padded)
        # a stock DataCollatorWithPadding batch: last tokens from the mask
        stock = {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"]}
        c = model(**stock, position_ids=padded.get("position_ids"))
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.logits, c.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-6, rtol=1e-6)
    assert packed["row"].tolist() == list(range(7))


def test_plain_trainer_pieces_and_hf_datasets(dataset_dir, tmp_path):
    """A `datasets.Dataset` from to_hf (the Trainer's default
    remove_unused_columns on) trains and predicts in ArenaTrainer; the
    wrapper also takes a stock DataCollatorWithPadding batch, and a plain
    Trainer trains and predicts with ArenaCollator."""
    ds = load_dataset(dataset_dir, fold=2, split="valid")
    hf = ds.to_hf()
    rows = trainer_rows(hf)
    assert rows.swapped and rows.labels.shape == (len(ds), 3)
    np.testing.assert_array_equal(rows.encoded.input_ids, ds.encoded.input_ids)
    trainer = ArenaTrainer(
        model=_model(),
        args=_args(tmp_path, max_steps=2, remove_unused_columns=True),
        train_dataset=hf.shuffle(seed=0),
        max_tokens=1024,
    )
    trainer.train()
    test = hf.remove_columns(["labels", "label"])  # a test set: no labels
    out = trainer.predict(test)
    assert out.predictions.shape == (len(ds), 3) and out.label_ids is None
    stock = DataCollatorWithPadding(_hf_pad(trainer.pad_id))
    batch = stock([{"input_ids": hf[i]["input_ids"]} for i in range(3)])
    with torch.no_grad():
        logits = trainer.model.eval()(**batch).logits
    np.testing.assert_allclose(logits.numpy(), out.predictions[:3], atol=1e-5)
    # A plain Trainer with ArenaCollator (rows per step, not tokens per step)
    plain = Trainer(
        model=ArenaForSequenceClassification(_model()),
        args=_args(tmp_path, max_steps=2, per_device_train_batch_size=8),
        train_dataset=hf,
        eval_dataset=hf,
        data_collator=ArenaCollator("packed"),
    )
    plain.train()
    got = plain.predict(hf).predictions
    want = infer.predict_logits(plain.model.classifier, ds.encoded, "packed", 4096)
    np.testing.assert_allclose(got, want, atol=1e-5)


class _hf_pad:
    """Just enough of a tokenizer for DataCollatorWithPadding (right padding)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def pad(self, features, return_tensors="pt", **_):
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.int64)
        mask = torch.zeros((len(features), width), dtype=torch.int64)
        for i, f in enumerate(features):
            ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
            mask[i, : len(f["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask}


def test_report_to_tensorboard_writes_events(dataset_dir, tmp_path):
    pytest.importorskip("tensorboard")
    trainer = ArenaTrainer(
        model=_model(),
        args=_args(
            tmp_path,
            max_steps=2,
            logging_steps=1,
            report_to="tensorboard",
            eval_strategy="steps",
            eval_steps=2,
        ),
        train_dataset=load_dataset(dataset_dir, fold=0, split="valid"),
        eval_dataset=load_dataset(dataset_dir, fold=1, split="valid"),
        compute_metrics=_log_loss,
        max_tokens=2048,
    )
    trainer.train()
    events = list((tmp_path / "out").rglob("events.out.tfevents.*"))
    assert events and sum(e.stat().st_size for e in events) > 200
    evals = [r for r in trainer.state.log_history if "eval_log_loss" in r]
    assert len(evals) == 1


def test_to_hf_keeps_ids_labels_folds_and_token_ids(dataset_dir):
    ds = load_dataset(dataset_dir)
    hf = ds.to_hf()
    assert len(hf) == len(ds)
    assert hf["id"] == ds.ids and hf["source"] == ds.sources
    assert hf["fold"] == ds.folds.tolist() and hf["label"] == ds.label.tolist()
    np.testing.assert_allclose(np.asarray(hf["labels"]), ds.labels)
    assert hf["length"] == ds.lengths.tolist()
    assert hf["is_swapped"] == ds.encoded.is_swapped.tolist()
    assert hf["input_ids"] == ds.encoded.to_lists()  # lists of ints, not binary
    # Dataset.map keeps every column it does not drop
    mapped = hf.map(lambda r: {"n": len(r["input_ids"])}, num_proc=None)
    assert mapped["id"] == ds.ids and mapped["n"] == ds.lengths.tolist()
    unswapped = load_dataset(dataset_dir, swap=False).to_hf()
    assert "is_swapped" not in unswapped.column_names and len(unswapped) == len(ds) // 2


def test_bad_inputs_are_clear_errors(dataset_dir, monkeypatch):
    ds = load_dataset(dataset_dir, fold=0, split="valid")
    with pytest.raises(af.ConfigError, match="ArenaClassifier"):
        ArenaForSequenceClassification(torch.nn.Linear(2, 3))
    with pytest.raises(af.ConfigError, match="datasets.Dataset with an input_ids"):
        trainer_rows([[1, 2, 3]])
    mixed = ds.to_hf().map(
        lambda r, i: {"labels": None if i == 3 else r["labels"]}, with_indices=True
    )
    with pytest.raises(af.InputError, match="row 3 has no label"):
        trainer_rows(mixed)
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)
    with pytest.raises(af.ConfigError, match="pip install datasets"):
        ds.to_hf()


def test_resumed_run_continues_with_the_same_batches(dataset_dir, tmp_path, monkeypatch):
    """Each epoch is re-planned (the Trainer calls the loader's set_epoch),
    and a Trainer checkpoint mid-epoch (gradient accumulation, padded
    batches) resumes with the very steps the whole run took."""
    data = load_dataset(dataset_dir, fold=0, split="valid")

    def trainer() -> ArenaTrainer:
        args = _args(
            tmp_path,
            num_train_epochs=2,
            gradient_accumulation_steps=2,
            logging_steps=1,
            save_strategy="steps",
            save_steps=3,
        )
        return ArenaTrainer(model=_model("eager"), args=args, train_dataset=data, max_tokens=1024)

    whole = trainer()
    assert whole.layout == "padded"
    loader = whole.get_train_dataloader()
    epochs = []
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        epochs.append([idx.tolist() for idx in loader.sampler])
    assert epochs[0] != epochs[1]  # re-planned: another order
    assert sorted(sum(epochs[0], [])) == sorted(sum(epochs[1], [])) == list(range(len(data)))
    called = []
    real_set_epoch = PlanSampler.set_epoch
    monkeypatch.setattr(
        PlanSampler, "set_epoch", lambda self, e: called.append(e) or real_set_epoch(self, e)
    )
    whole.train()
    assert called[-2:] == [0, 1]  # the Trainer sets each epoch's plan
    resumed = trainer()
    resumed.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-3"))

    def losses(t) -> np.ndarray:
        return np.array([(r["step"], r["loss"]) for r in t.state.log_history if "loss" in r])

    assert len(losses(whole)) == whole.state.global_step > 6
    np.testing.assert_allclose(losses(resumed), losses(whole), rtol=1e-6)


def test_dataset_map_example_keeps_ids_and_labels(shared_dir, data_dir, tmp_path):
    """docs/training.md's Dataset.map example on the real Kaggle rows."""
    import pyarrow as pa

    tok = af.Tokenizer.from_file(str(shared_dir / "tokenizers" / "llama3" / "tokenizer.json"))
    encoder = af.Encoder(tok, max_length=256)
    winners = ("winner_model_a", "winner_model_b", "winner_tie")

    def encode(batch: pa.Table, encoder: af.Encoder) -> pa.Table:
        texts = (batch.column(c).to_pylist() for c in ("prompt", "response_a", "response_b"))
        enc = encoder.encode_json(*texts, swap="both")
        labels = np.stack([batch.column(c).to_numpy() for c in winners], axis=1)
        labels = labels.astype(np.float32)
        both = np.stack([labels, af.swap_labels(labels)], axis=1).reshape(-1, 3)
        return pa.table(
            {
                "id": np.repeat(batch.column("id").to_numpy(), 2),
                "labels": pa.FixedSizeListArray.from_arrays(pa.array(both.ravel()), 3),
                "is_swapped": enc.is_swapped,
                "input_ids": enc.to_arrow(),
            }
        )

    csv = str(data_dir / "kaggle_train_head100.csv")
    ds = datasets.Dataset.from_csv(csv, cache_dir=str(tmp_path / "cache"))
    rows = ds.with_format("arrow").map(
        encode, fn_kwargs={"encoder": encoder}, batched=True, remove_columns=ds.column_names
    )
    rows = rows.with_format(None)
    assert rows["id"][0::2] == rows["id"][1::2] == ds["id"]
    expected = np.stack([ds[c] for c in winners], axis=1).astype(np.float32)
    labels = np.asarray(rows["labels"])
    np.testing.assert_array_equal(labels[0::2], expected)
    np.testing.assert_array_equal(labels[1::2], expected[:, [1, 0, 2]])
    direct = encoder.encode_json(*(ds[c] for c in ("prompt", "response_a", "response_b")))
    assert rows["input_ids"][0::2] == direct.to_lists()
    got = trainer_rows(rows)
    assert got.swapped and got.labels.shape == (2 * len(ds), 3)


def test_arena_trainer_takes_af_train_steps(dataset_dir, tmp_path):
    """On packs, ArenaTrainer's steps are af.train's: the same plan, the
    same batches, the same AdamW and cosine schedule give the same loss at
    every step."""
    from arena_fast.train import TrainConfig, train

    records: list = []
    config = TrainConfig(
        data=str(dataset_dir),
        fold=None,
        model="tiny-gemma2",
        attn_implementation="arena_varlen",
        lr=1e-3,
        warmup=0.0,
        max_tokens=2048,
        max_steps=4,
        seed=0,
        log_every=1,
        out=str(tmp_path / "run"),
    )
    train(config, log=records.append)
    ours = [r["loss"] for r in records if "loss" in r]
    args = _args(
        tmp_path,
        max_steps=4,
        learning_rate=1e-3,
        lr_scheduler_type="cosine",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=0.0,
        logging_steps=1,
    )
    trainer = ArenaTrainer(
        model=_model(), args=args, train_dataset=load_dataset(dataset_dir), max_tokens=2048
    )
    trainer.train()
    theirs = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    assert len(ours) == 4
    np.testing.assert_allclose(theirs, ours, rtol=1e-5)
