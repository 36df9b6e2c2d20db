"""Training with Hugging Face `transformers.Trainer` on arena_fast batches
(the `[train]` extra; `datasets` only to read a `datasets.Dataset`).

Three pieces, each usable alone, and a Trainer that ties them together:

- `ArenaForSequenceClassification`: an `af.model.ArenaClassifier` as the
  Trainer expects a model: `forward(**batch)` returns a
  `SequenceClassifierOutput(loss, logits)`, the loss `af.losses.cross_entropy`
  of hard (class id) or soft (3 probabilities) `labels`. It reads packed
  batches (`cu_seq_lens_q`) and padded ones (`attention_mask`; without
  `last_index`, as `DataCollatorWithPadding` makes them, each row's last
  token is where its mask ends).
- `ArenaCollator`: a data collator: rows holding `input_ids` (and `labels`
  or `label`) collated by `af.collate_packed` / `af.collate_padded`.
- `PlanSampler` (`af.torch.data`): token-budgeted steps, re-planned by
  `set_epoch`.
- `ArenaTrainer(transformers.Trainer)`: the Trainer's own loop, evaluation,
  `compute_metrics`, callbacks, `report_to` and checkpoints, with its train,
  eval and test dataloaders made of arena_fast plans: packs or
  length-grouped padded batches of at most `max_tokens` tokens, in the
  layout `af.train` picks for the model's attention (`resolve_layout`).
  Evaluation and `predict` give each row's logits in dataset order, and
  `eval_loss` is the mean over rows, whatever the batches.

    trainer = ArenaTrainer(
        model=af.model.load_classifier("tiny-gemma2", tokenizer=tok),
        args=TrainingArguments("out", num_train_epochs=1, report_to="tensorboard"),
        train_dataset=af.load_dataset("ds", fold=0, split="train"),
        eval_dataset=af.load_dataset("ds", fold=0, split="valid"),
        max_tokens=8192,
    )

Datasets are `af.load_dataset` results (`ArenaDataset`) or a
`datasets.Dataset` with an `input_ids` column (e.g. `ArenaDataset.to_hf()`,
after any `map` / `filter`) and `labels` or `label`. docs/training.md,
"Training with Hugging Face Trainer"."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
import torch
import transformers
from transformers.modeling_outputs import SequenceClassifierOutput

from .. import losses
from ..checks import check_int
from ..encoded import Encoded
from ..errors import ConfigError, InputError
from ..model import ArenaClassifier
from .data import ArenaBatches, PlanSampler, inference_plan, resolve_layout

# `transformers.trainer_utils` (and `transformers.Trainer`) are reached as
# attributes, after `..model` is imported: importing them imports
# bitsandbytes, whose CPU-kernel notice `af.model` filters first.

__all__ = [
    "ArenaCollator",
    "ArenaForSequenceClassification",
    "ArenaTrainer",
    "TrainerRows",
    "trainer_rows",
]

# The batch keys of the collators that the model reads; `row` (the row's place
# in its dataset) and `seq_idx` travel along and are not used by the model.
_MODEL_KEYS = (
    "input_ids",
    "attention_mask",
    "position_ids",
    "cu_seq_lens_q",
    "cu_seq_lens_k",
    "max_length_q",
    "max_length_k",
    "last_index",
)


class ArenaForSequenceClassification(torch.nn.Module):
    """`classifier` (an `af.model.ArenaClassifier`) with the interface
    `transformers.Trainer` calls: keyword tensors in, a
    `SequenceClassifierOutput` out, with the loss when `labels` are given
    (class ids (k,) or probability rows (k, K), K the classifier's classes:
    `af.losses.cross_entropy`).
    Its state dict is the classifier's under `classifier.`."""

    main_input_name = "input_ids"
    accepts_loss_kwargs = False  # the loss is a mean over the batch's rows

    def __init__(self, classifier: torch.nn.Module):
        super().__init__()
        if not isinstance(classifier, ArenaClassifier):
            raise ConfigError(
                "ArenaForSequenceClassification wraps an af.model.ArenaClassifier "
                f"(load_classifier / classifier_for), got {type(classifier).__name__}"
            )
        self.classifier = classifier

    @property
    def attn_implementation(self) -> Optional[str]:
        """The decoder's attention implementation ("arena_varlen", "eager", ...)."""
        return getattr(self.classifier.decoder.config, "_attn_implementation", None)

    @property
    def pad_id(self) -> int:
        return self.classifier.pad_id

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None) -> None:
        """What `TrainingArguments(gradient_checkpointing=True)` calls."""
        self.classifier.decoder.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs=gradient_checkpointing_kwargs
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        cu_seq_lens_q: Optional[torch.Tensor] = None,
        cu_seq_lens_k: Optional[torch.Tensor] = None,
        max_length_q: Optional[int] = None,
        max_length_k: Optional[int] = None,
        last_index: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        seq_idx: Optional[torch.Tensor] = None,
        row: Optional[torch.Tensor] = None,
    ) -> SequenceClassifierOutput:
        """Logits (k, K) of the k sequences of a packed or padded batch, in
        batch order, and their mean loss against `labels`. `seq_idx` and
        `row` (what `ArenaCollator` adds) are accepted and not used."""
        given = dict(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cu_seq_lens_q=cu_seq_lens_q,
            cu_seq_lens_k=cu_seq_lens_k,
            max_length_q=max_length_q,
            max_length_k=max_length_k,
            last_index=last_index,
        )
        batch = {k: v for k, v in given.items() if v is not None}
        if last_index is None:
            batch["last_index"] = _last_index(attention_mask)
        logits = self.classifier(batch)
        loss = None if labels is None else losses.cross_entropy(logits, labels.to(logits.device))
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _last_index(attention_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Each padded row's last real token (right or left padding), from its
    attention mask: the column of the mask's last 1."""
    if attention_mask is None:
        raise ConfigError(
            "a batch needs last_index (arena_fast's collators give it) or an attention_mask "
            "(padded batches such as DataCollatorWithPadding's)"
        )
    width = attention_mask.shape[1]
    return width - 1 - attention_mask.flip(1).argmax(dim=1)


class ArenaCollator:
    """A data collator: `collator(features)` turns rows, each a mapping with
    `input_ids` (a sequence of ints) and `labels` (a class id or 3
    probabilities; `label` if no `labels`), into one batch of tensors:
    packed (`layout="packed"`, one row, no padding, for `arena_varlen` /
    flash-attn) or padded (`pad_id`, `side`, `pad_to_multiple_of`), as
    `af.collate_packed` / `af.collate_padded` make them, plus `row` (each
    row's `row` feature, else its place in `features`). With a plain
    `Trainer` it collates the rows the Trainer's sampler picked
    (`per_device_train_batch_size` rows a step); `ArenaTrainer` plans
    token-budgeted steps instead."""

    def __init__(
        self,
        layout: str = "packed",
        pad_id: Optional[int] = None,
        side: str = "right",
        pad_to_multiple_of: Optional[int] = None,
    ):
        # ArenaBatches checks the layout, the pad id and the side.
        ArenaBatches(Encoded.from_lists([]), None, layout, pad_id, side, pad_to_multiple_of)
        self.layout = layout
        self.pad_id = pad_id
        self.side = side
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not features:
            raise InputError("ArenaCollator: an empty batch")
        missing = [i for i, f in enumerate(features) if f.get("input_ids") is None]
        if missing:
            raise InputError(f"ArenaCollator: row {missing[0]} of the batch has no input_ids")
        encoded = Encoded.from_lists([f["input_ids"] for f in features])
        name = "labels" if "labels" in features[0] else "label"
        labels = _label_values([f.get(name) for f in features], f"batch feature {name!r}")
        rows = [f.get("row", i) for i, f in enumerate(features)]
        batches = ArenaBatches(
            encoded, labels, self.layout, self.pad_id, self.side, self.pad_to_multiple_of
        )
        idx = np.arange(len(features), dtype=np.int64)
        return {"row": torch.as_tensor(rows, dtype=torch.int64), **batches[idx]}


def _label_values(values: Sequence[Any], where: str) -> Optional[np.ndarray]:
    """Labels as the collators take them: class ids (n,) int64 or
    probability rows (n, K); None when no row has one. Some rows labelled
    and others not is an InputError naming the first unlabelled row."""
    unlabelled = [i for i, v in enumerate(values) if v is None or _is_nan_row(v)]
    if len(unlabelled) == len(values):
        return None
    if unlabelled:
        raise InputError(
            f"{where}: row {unlabelled[0]} has no label while other rows have one "
            f"({len(unlabelled)} of {len(values)} unlabelled); keep the labelled rows "
            "(e.g. ds.filter(lambda r: r['label'] >= 0)) or predict without labels"
        )
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    return np.asarray(values, dtype=np.float32)


def _is_nan_row(value: Any) -> bool:
    if isinstance(value, (int, np.integer)):
        return value < 0  # the `label` column's -1: unlabelled
    array = np.asarray(value, dtype=np.float64)
    return bool(np.isnan(array).any())


class TrainerRows:
    """What `ArenaTrainer` plans and collates: the rows' token ids (an
    `af.Encoded`), their labels (None when unlabelled), and whether rows 2i
    and 2i + 1 are the two A/B orders of one conversation (kept in one step)."""

    def __init__(self, encoded: Encoded, labels: Optional[np.ndarray], swapped: bool):
        self.encoded = encoded
        self.labels = labels
        self.swapped = swapped

    def __len__(self) -> int:
        return len(self.encoded)


def trainer_rows(data: Any, where: str = "dataset") -> TrainerRows:
    """`data` (an `af.load_dataset` result, or a `datasets.Dataset` with an
    `input_ids` column of token-id lists and optionally `labels` / `label`
    and `is_swapped`, as `ArenaDataset.to_hf()` makes it) as `TrainerRows`.
    The token ids of a `datasets.Dataset` are read through Arrow without a
    per-row copy (`Encoded.from_arrow`)."""
    if isinstance(data, TrainerRows):
        return data
    if hasattr(data, "encoded") and hasattr(data, "labelled"):  # an ArenaDataset
        labelled = np.asarray(data.labelled)
        if labelled.all() and len(labelled):
            return TrainerRows(data.encoded, data.labels, bool(data.swapped))
        # none labelled (a test set), or an InputError naming the first unlabelled row
        _label_values([0 if x else None for x in labelled], f"{where} ({data.path})")
        return TrainerRows(data.encoded, None, bool(data.swapped))
    if hasattr(data, "with_format") and hasattr(data, "column_names"):  # datasets.Dataset
        if "input_ids" not in data.column_names:
            raise InputError(f"{where}: no input_ids column (columns: {data.column_names})")
        table = data.with_format("arrow")[:]  # the rows in the dataset's order (select, shuffle)
        encoded = Encoded.from_arrow(table.column("input_ids"))
        name = next((c for c in ("labels", "label") if c in table.column_names), None)
        labels = None
        if name is not None:
            labels = _label_values(table.column(name).to_pylist(), f"{where}: column {name!r}")
        swapped = "is_swapped" in table.column_names and _alternates(
            table.column("is_swapped").to_numpy(zero_copy_only=False)
        )
        return TrainerRows(encoded, labels, swapped)
    raise ConfigError(
        f"{where} must be an af.load_dataset result or a datasets.Dataset with an input_ids "
        f"column, got {type(data).__name__}"
    )


def _alternates(is_swapped: np.ndarray) -> bool:
    """Rows 2i and 2i + 1 are each conversation's two orders."""
    n = len(is_swapped)
    return n > 0 and n % 2 == 0 and not is_swapped[0::2].any() and bool(is_swapped[1::2].all())


class _RowBatches(torch.utils.data.Dataset):
    """`ArenaBatches` whose batches also carry `row`: each sequence's place
    in its dataset (first, so that the Trainer counts a batch's rows)."""

    def __init__(self, batches: ArenaBatches):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, idx: Any) -> dict[str, Any]:
        return {"row": torch.tensor(np.asarray(idx), dtype=torch.int64), **self.batches[idx]}


class _Steps(torch.utils.data.Sampler):
    """A sampler over steps: an epoch's plan (`PlanSampler`, re-planned by
    `set_epoch`) or a fixed one (evaluation), the first `skip` steps left out
    (a resumed epoch). Its length is the longest epoch's, so the Trainer's
    schedule covers every step; a shorter epoch (padded batches vary by a
    step or two) ends early."""

    def __init__(self, plans: Any, length: int, skip: int = 0):
        self.plans = plans
        self.length = length
        self.skip = skip

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.plans, "set_epoch"):
            self.plans.set_epoch(epoch)

    def __len__(self) -> int:
        return max(self.length - self.skip, 0)

    def __iter__(self):
        return itertools.islice(iter(self.plans), self.skip, None)


class _PlanLoader(torch.utils.data.DataLoader):
    """A DataLoader of whole planned steps whose `set_epoch` (the Trainer
    calls it before each epoch) re-plans the epoch."""

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)


class ArenaTrainer(transformers.Trainer):
    """`transformers.Trainer` on arena_fast plans. `model` is an
    `ArenaClassifier` (wrapped in `ArenaForSequenceClassification`) or that
    wrapper; `train_dataset` / `eval_dataset` (one, or a dict of them) are
    `af.load_dataset` results or `datasets.Dataset`s (`trainer_rows`).

    `max_tokens`: each training step's token budget (packs of at most that
    many tokens, or padded batches whose rows x longest stays within it);
    `eval_max_tokens` the evaluation's (default `max_tokens`). `layout`:
    "auto" (packs for varlen attention such as `arena_varlen`, else padded:
    `af.torch.resolve_layout`, as `af.train`), "packed" or "padded".
    `per_device_train_batch_size` and `train_sampling_strategy` do not
    apply: steps are planned by tokens, swap pairs kept in one step, the
    order shuffled per (`data_seed` or `seed`, epoch); `dataloader_*`
    settings do. Other arguments go to `Trainer`; `remove_unused_columns`
    has no effect (the batches hold what the model reads).

    `evaluate` / `predict` run every row once; predictions and label ids
    come back in dataset order (the batches' row indices put them back),
    `compute_metrics` sees them so, and `eval_loss` is the mean over rows."""

    def __init__(
        self,
        model: Any = None,
        args: Optional[transformers.TrainingArguments] = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        *,
        max_tokens: int = 16384,
        eval_max_tokens: Optional[int] = None,
        layout: str = "auto",
        pad_id: Optional[int] = None,
        **kwargs: Any,
    ):
        if model is not None and not isinstance(model, ArenaForSequenceClassification):
            model = ArenaForSequenceClassification(model)
        if model is None:
            raise ConfigError("ArenaTrainer needs a model (an af.model.ArenaClassifier)")
        self.max_tokens = check_int("max_tokens", max_tokens, 1, 2**40)
        self.eval_max_tokens = check_int(
            "eval_max_tokens", max_tokens if eval_max_tokens is None else eval_max_tokens, 1, 2**40
        )
        self.layout = resolve_layout(layout, model.attn_implementation, model)
        self.pad_id = model.pad_id if pad_id is None else pad_id
        kwargs.setdefault("data_collator", ArenaCollator(self.layout, self.pad_id))
        super().__init__(
            model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, **kwargs
        )
        for name, bad in (
            ("batch_eval_metrics", self.args.batch_eval_metrics),
            ("include_for_metrics", bool(self.args.include_for_metrics)),
            ("eval_do_concat_batches=False", not self.args.eval_do_concat_batches),
        ):
            if bad:
                raise ConfigError(
                    f"ArenaTrainer: {name} is not supported (metrics are computed once, over "
                    "every row in dataset order)"
                )

    # -- dataloaders ----------------------------------------------------------

    def _loader(self, rows: Any, sampler: _Steps) -> _PlanLoader:
        """`rows` (`TrainerRows`, or the `_RowBatches` of a loader made
        before) in the steps of `sampler`, with the `dataloader_*` settings."""
        if isinstance(rows, TrainerRows):
            rows = _RowBatches(
                ArenaBatches(rows.encoded, rows.labels, self.layout, pad_id=self.pad_id)
            )
        args = self.args
        workers = args.dataloader_num_workers
        return _PlanLoader(
            rows,
            sampler=sampler,
            batch_size=None,
            num_workers=workers,
            pin_memory=args.dataloader_pin_memory,
            persistent_workers=args.dataloader_persistent_workers and workers > 0,
            prefetch_factor=args.dataloader_prefetch_factor if workers > 0 else None,
        )

    def get_train_dataloader(self) -> _PlanLoader:
        if self.train_dataset is None:
            raise ConfigError("ArenaTrainer: training needs a train_dataset")
        rows = trainer_rows(self.train_dataset, "train_dataset")
        if rows.labels is None:
            raise InputError("train_dataset: no row has a label; training needs labelled rows")
        args = self.args
        sampler = PlanSampler(
            rows.encoded,
            self.max_tokens,
            self.layout,
            seed=args.data_seed if args.data_seed is not None else args.seed,
            world_size=max(args.world_size, 1),
            rank=args.process_index if args.world_size > 1 else 0,
            pair_swaps=rows.swapped,
        )
        epochs = max(1, math.ceil(args.num_train_epochs))
        length = 0
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            length = max(length, len(sampler))
        sampler.set_epoch(0)
        return self._loader(rows, _Steps(sampler, length))

    def get_resumed_dataloader(self, dataloader: _PlanLoader, num_batches: int) -> _PlanLoader:
        """The resumed epoch's loader: its plan (set by the Trainer's
        `set_epoch` next) without its first `num_batches` steps."""
        steps = dataloader.sampler
        return self._loader(
            dataloader.dataset, _Steps(steps.plans, steps.length, steps.skip + num_batches)
        )

    def _eval_loader(self, data: Any, where: str) -> _PlanLoader:
        """Every row once (`inference_plan`). Under several processes each
        one evaluates every row: the Trainer gathers batches of equal sizes
        from every rank, and `evaluation_loop` keeps each row once."""
        rows = trainer_rows(data, where)
        plan = inference_plan(rows.encoded, self.eval_max_tokens, self.layout)
        return self._loader(rows, _Steps(plan, len(plan)))

    def get_eval_dataloader(self, eval_dataset: Any = None) -> _PlanLoader:
        if eval_dataset is None and self.eval_dataset is None:
            raise ConfigError("ArenaTrainer: evaluation needs an eval_dataset")
        if isinstance(eval_dataset, str):
            return self._eval_loader(
                self.eval_dataset[eval_dataset], f"eval_dataset[{eval_dataset!r}]"
            )
        data = eval_dataset if eval_dataset is not None else self.eval_dataset
        return self._eval_loader(data, "eval_dataset")

    def get_test_dataloader(self, test_dataset: Any) -> _PlanLoader:
        return self._eval_loader(test_dataset, "test_dataset")

    # -- evaluation -----------------------------------------------------------

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """The Trainer's step, with the batch's row indices beside its logits
        and its mean loss counted once per row (so `eval_loss` is the mean
        over rows, not over batches of different sizes)."""
        loss, logits, labels = super().prediction_step(
            model, inputs, prediction_loss_only, ignore_keys=ignore_keys
        )
        rows = inputs["row"]
        if loss is not None:
            loss = loss.expand(len(rows))
        if logits is not None:
            logits = (logits, rows)
        return loss, logits, labels

    def evaluation_loop(
        self,
        dataloader,
        description: str,
        prediction_loss_only: Optional[bool] = None,
        ignore_keys: Optional[list[str]] = None,
        metric_key_prefix: str = "eval",
    ) -> Any:
        """The Trainer's loop, then the predictions and label ids put in
        dataset order (each row once) and `compute_metrics` run on them."""
        compute_metrics, self.compute_metrics = self.compute_metrics, None
        try:
            out = super().evaluation_loop(
                dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
            )
        finally:
            self.compute_metrics = compute_metrics
        if out.predictions is None:
            return out
        logits, rows = out.predictions
        order = _dataset_order(np.asarray(rows))
        predictions = np.asarray(logits)[order]
        labels = None if out.label_ids is None else np.asarray(out.label_ids)[order]
        metrics = dict(out.metrics)
        if compute_metrics is not None and labels is not None:
            utils = transformers.trainer_utils
            extra = utils.denumpify_detensorize(
                compute_metrics(utils.EvalPrediction(predictions=predictions, label_ids=labels))
            )
            prefix = f"{metric_key_prefix}_"
            metrics.update({k if k.startswith(prefix) else prefix + k: v for k, v in extra.items()})
        return transformers.trainer_utils.EvalLoopOutput(
            predictions=predictions, label_ids=labels, metrics=metrics, num_samples=len(order)
        )


def _dataset_order(rows: np.ndarray) -> np.ndarray:
    """Positions of `rows` (the gathered row indices: every rank's copy of
    each row, -100 where the Trainer padded) that give each row once, in
    row order."""
    real = np.flatnonzero(rows >= 0)
    _, first = np.unique(rows[real], return_index=True)
    return real[first]
