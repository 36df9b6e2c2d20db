"""`af.infer`, what training's evaluation and prediction share: logits over
the public loader's batches (padding never reaches them), probabilities,
the held-out evaluation scored by `af.diagnostics`' one log loss; and
`af.weights`, a run's tensors written and read back."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

import arena_fast as af  # noqa: E402
from arena_fast.diagnostics import accuracy, log_loss, read_predictions  # noqa: E402
from arena_fast.infer import evaluate, pair_rewards, predict_logits, probabilities  # noqa: E402
from arena_fast.model import load_classifier  # noqa: E402
from arena_fast.weights import load_weights, save_weights  # noqa: E402

LENGTHS = (5, 23, 9, 40, 14, 31, 2, 17)


@pytest.fixture(scope="module", autouse=True)
def _threads(one_torch_thread):
    """Every test of the module on one torch thread (conftest)."""


@pytest.fixture(scope="module")
def model():
    return load_classifier("tiny-llama", attn_implementation="eager", seed=3)


@pytest.fixture(scope="module")
def encoded(model) -> af.Encoded:
    rng = np.random.default_rng(5)
    vocab = model.decoder.config.vocab_size
    return af.Encoded.from_lists([rng.integers(1, vocab, size=n).tolist() for n in LENGTHS])


def test_padded_logits_do_not_depend_on_the_pad_id(model, encoded):
    """Right padding is masked and after each row's last token: any pad id
    gives the same logits, bit for bit (so taking it from the model's config
    instead of a literal 0 changed no output)."""
    assert model.pad_id == model.decoder.config.eos_token_id  # tiny models: no pad token
    ours = predict_logits(model, encoded, "padded", max_tokens=120)
    for pad_id in (0, 7):
        other = predict_logits(model, encoded, "padded", max_tokens=120, pad_id=pad_id)
        np.testing.assert_array_equal(ours, other)


@pytest.mark.parametrize("max_rows", [None, 3])
def test_logits_come_back_in_row_order_whatever_the_batches(model, encoded, max_rows):
    alone = [predict_logits(model, _rows(encoded, [i]), "padded") for i in range(len(encoded))]
    for layout in ("packed", "padded"):
        got = predict_logits(model, encoded, layout, max_tokens=64, max_rows=max_rows)
        np.testing.assert_allclose(got, np.concatenate(alone), atol=1e-5)


def _rows(encoded: af.Encoded, idx: list) -> af.Encoded:
    return af.Encoded.from_lists([encoded[i].tolist() for i in idx])


def test_an_unknown_layout_is_refused(model, encoded):
    with pytest.raises(af.ConfigError, match="layout must be one of"):
        predict_logits(model, encoded, "ragged")


def test_probabilities_are_a_softmax_and_refuse_what_is_not_finite():
    logits = np.array([[0.0, 0.0, 0.0], [1000.0, 0.0, -1000.0]])
    p = probabilities(logits)
    np.testing.assert_allclose(p[0], [1 / 3] * 3)
    np.testing.assert_allclose(p[1], [1.0, 0.0, 0.0])
    with pytest.raises(af.InputError, match=r"where: row 1 \(id 'b'\).*not finite"):
        probabilities([[0, 0, 0], [np.nan, 0, 0]], ["a", "b"], "where")


def test_pair_rewards_pair_rows_and_refuse_what_is_not_finite():
    rewards = pair_rewards(np.array([[1.0], [2.0], [3.0], [-4.0]]))
    np.testing.assert_array_equal(rewards, [[1.0, 2.0], [3.0, -4.0]])
    rows = np.array([[0.0], [1.0], [np.inf], [0.0], [np.nan], [0.0]])
    with pytest.raises(af.InputError, match=r"where: row 2 \(id 'c'\).*inf.*\(2 rows such\)"):
        pair_rewards(rows, list("abcdef"), "where")
    with pytest.raises(ValueError, match=r"\(2n, 1\)"):
        pair_rewards(np.zeros((3, 1)))


class _Held:
    """What `evaluate` reads of an `ArenaDataset`: four conversations in both
    orders (rows 2i and 2i + 1), the last one unlabelled."""

    def __init__(self, encoded: af.Encoded, path):
        n = len(encoded)
        self.encoded, self.path, self.swapped = encoded, path, True
        self.ids = np.array([f"r{i // 2}" for i in range(n)], dtype=object)
        original = np.eye(3)[[0, 1, 2, 0]]
        self.labels = np.empty((n, 3))
        self.labels[0::2], self.labels[1::2] = original, af.swap_labels(original)
        self.labelled = np.arange(n) < 6
        self.folds = np.zeros(n, dtype=np.int32)
        self.manifest = {"shards": [{"sha256": "0" * 64}]}  # the dataset's identity


def test_evaluation_scores_with_the_diagnostics_log_loss(model, encoded, tmp_path):
    held = _Held(encoded, tmp_path / "ds")
    result = evaluate(model, held, "packed", 256, predictions=tmp_path / "preds.parquet")
    assert model.training  # left as training found it
    probs = probabilities(predict_logits(model, encoded, "packed", 256))
    y = held.labels[held.labelled]
    assert result["rows"] == 6
    assert result["log_loss"] == log_loss(probs[held.labelled], y)
    assert result["accuracy"] == accuracy(probs[held.labelled], y)
    table = read_predictions(tmp_path / "preds.parquet")
    assert len(table) == 4 and result["tta_log_loss"] == pytest.approx(
        log_loss(table["probs"].to_numpy()[:3], held.labels[0:6:2]), rel=1e-12
    )


def test_weights_round_trip_gives_the_same_logits(model, encoded, tmp_path):
    save_weights(model, tmp_path, step=1)
    other = load_classifier("tiny-llama", attn_implementation="eager", seed=4)
    assert not np.array_equal(
        predict_logits(other, encoded, "packed"), predict_logits(model, encoded, "packed")
    )
    load_weights(other, tmp_path)
    np.testing.assert_array_equal(
        predict_logits(other, encoded, "packed"), predict_logits(model, encoded, "packed")
    )
