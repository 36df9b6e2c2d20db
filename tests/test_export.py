"""`arena-fast export` / `af.export.export_reward_model`: a trained reward run
as a Hugging Face folder that transformers loads as it is and that scores
like the run (docs/reward.md, "Exporting a reward model"): padded batches of
sequences of different lengths (transformers reads the last token that is
not the pad), with and without LoRA (merged), a run on Llama 3's chat
template scored on `apply_chat_template`'s ids; the pad token's choice; the
refusals (an existing folder, a head with a bias, the mlp head, a
classifier); the CLI's exit codes; the same bytes twice."""

from __future__ import annotations

import json

import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
transformers = train_extra("transformers")
safetensors_torch = train_extra("safetensors.torch")

import arena_fast as af  # noqa: E402
from arena_fast.cli import main as cli_main  # noqa: E402
from arena_fast.collate import collate_packed  # noqa: E402
from arena_fast.dataset import load_dataset  # noqa: E402
from arena_fast.errors import ConfigError  # noqa: E402
from arena_fast.export import choose_pad, export_reward_model  # noqa: E402
from arena_fast.merge import merged_classifier  # noqa: E402
from arena_fast.outputs import EXPORT_MARKER  # noqa: E402
from arena_fast.predict import load_run  # noqa: E402
from arena_fast.runs import write_bundle_file  # noqa: E402
from arena_fast.tokenizer import DEMO_DIR  # noqa: E402
from arena_fast.torch.data import to_torch  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AutoModel = transformers.AutoModelForSequenceClassification
AutoTokenizer = transformers.AutoTokenizer


def _set_head(run, bias=None, **config_changes):
    """The run's head bias set to `bias` (None: left as it is) and
    `config_changes` written to its config.json; bundle.json re-hashed so
    the run stays valid. Exports are exact for a bias of zero: transformers'
    score layer has none."""
    head = safetensors_torch.load_file(str(run / "head.safetensors"))
    if bias is not None and (bias != 0 or "score.bias" in head):
        head["score.bias"] = torch.full((1,), float(bias))
        safetensors_torch.save_file(head, str(run / "head.safetensors"))
    if config_changes:
        config = json.loads((run / "config.json").read_text())
        config.update(config_changes)
        (run / "config.json").write_text(json.dumps(config, indent=2))
    write_bundle_file(run, read_bundle_unchecked(run))
    return run


def read_bundle_unchecked(run):
    return json.loads((run / "bundle.json").read_text())


def _train(data, out, **kw):
    config = TrainConfig(
        data=str(data), out=str(out), objective="reward", model="tiny-llama", fold=None, **kw
    )
    train(config)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny reward runs on the demo tokenizer's separate-layout rows, one
    trained in full and one with LoRA (a learning rate that moves the
    adapter well away from zero). A reward head has no bias (transformers'
    score layer has none), so both export exactly as trained."""
    root = tmp_path_factory.mktemp("export")
    data = build_rows(keyword_rows(24, 0), root, max_length=256, folds=2, layout="separate")
    full = _train(data, root / "full", max_steps=2)
    lora = _train(data, root / "lora", max_steps=3, lora_r=4, lr=5e-2)
    for run in (full, lora):
        head = safetensors_torch.load_file(str(run / "head.safetensors"))
        assert sorted(head) == ["score.weight", "tie.raw"]
    return {"data": data, "full": full, "lora": lora}


def _our_rewards(run, encoded, idx, merged=False):
    """The run's rewards of rows `idx`, as arena_fast computes them (one
    pack); `merged`: with the LoRA adapter folded into the weights first, as
    the export is (`af.merge.merged_classifier`)."""
    tokenizer = af.Tokenizer.from_file(run / "tokenizer.json")
    model, _ = (merged_classifier if merged else load_run)(run, tokenizer)
    with torch.no_grad():
        return model(to_torch(collate_packed(encoded, idx)))[:, 0].double()


def _their_rewards(folder, sequences):
    """The export's rewards of `sequences` (lists of ids), padded together by
    the exported tokenizer, as transformers computes them."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    batch = tok.pad({"input_ids": sequences}, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits[:, 0].double(), batch


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["full", "lora"])
def test_the_export_scores_padded_batches_like_the_run(runs, kind, tmp_path):
    run, out = runs[kind], tmp_path / "hf"
    result = export_reward_model(run, out)
    assert result["architecture"] == "LlamaForSequenceClassification"
    assert (result["lora_r"] > 0) == (kind == "lora")
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert len(config["id2label"]) == 1
    # the demo tokenizer's own <pad>: sequences end with its <eos>
    assert (result["pad_token"], config["pad_token_id"]) == ("<pad>", 0)
    encoded = load_dataset(runs["data"]).encoded
    by_length = {len(encoded[i]): i for i in range(len(encoded))}
    idx = [by_length[n] for n in sorted(by_length)][:6]
    sequences = [list(map(int, encoded[i])) for i in idx]
    assert len({len(s) for s in sequences}) >= 4  # padded: the pad / last-token choice matters
    assert all(s[-1] == 1 for s in sequences)  # ... and they end with the EOS, not the pad
    theirs, batch = _their_rewards(out, sequences)
    assert bool((batch["input_ids"] == 0).any())
    ours = _our_rewards(run, encoded, idx, merged=True)
    assert torch.allclose(theirs, ours, atol=1e-5, rtol=0), (theirs, ours)
    # Folding LoRA into float32 weights rounds (1.5e-5 seen on rewards ~3
    # after 3 steps at lr 5e-2); without LoRA the run itself is the export.
    unmerged = _our_rewards(run, encoded, idx)
    assert torch.allclose(theirs, unmerged, atol=1e-5 if kind == "full" else 1e-4, rtol=0)
    assert float(ours.std()) > 1e-4  # rewards that tell the sequences apart
    if kind == "lora":  # the adapter is in the weights: the base model scores otherwise
        base = safetensors_torch.load_file(str(out / "model.safetensors"))
        delta = safetensors_torch.load_file(str(run / "decoder.safetensors"))
        assert "model.layers.0.self_attn.q_proj.weight" in base
        assert not any("lora" in k for k in base) and len(delta) > 0


@pytest.mark.slow
def test_exporting_twice_writes_the_same_bytes_and_overwrite_is_asked(runs, tmp_path):
    run = runs["lora"]
    first, second = tmp_path / "a", tmp_path / "b"
    export_reward_model(run, first)
    export_reward_model(run, second)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert set(names) == {
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        EXPORT_MARKER,
    }
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "tokenizer.json").read_bytes() == (run / "tokenizer.json").read_bytes()
    readme = (first / "README.md").read_text()
    assert str(run.resolve()) in readme and "AutoModelForSequenceClassification" in readme
    marker = json.loads((first / EXPORT_MARKER).read_text())
    assert marker["files"] == names and marker["lora_merged"] is True
    # an existing export: refused without overwrite, replaced with it
    with pytest.raises(ConfigError, match="already exists.*overwrite"):
        export_reward_model(run, first)
    export_reward_model(run, first, overwrite=True)
    # a folder that is not an export is never replaced
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not an arena-fast export"):
        export_reward_model(run, foreign, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_heads_that_cannot_be_written_exactly_are_refused(runs, tmp_path):
    run = runs["full"]
    copy = tmp_path / "run"
    copy.mkdir()
    for p in run.iterdir():
        if p.is_file():
            (copy / p.name).write_bytes(p.read_bytes())
    _set_head(copy, 0.25)
    with pytest.raises(ConfigError, match="bias.*0.25"):
        export_reward_model(copy, tmp_path / "out")
    head = safetensors_torch.load_file(str(copy / "head.safetensors"))
    safetensors_torch.save_file(
        {**head, "score.1.weight": head["score.weight"].clone()}, str(copy / "head.safetensors")
    )
    _set_head(copy)
    with pytest.raises(ConfigError, match="score.1.weight.*one Linear layer"):
        export_reward_model(copy, tmp_path / "out")
    safetensors_torch.save_file(head, str(copy / "head.safetensors"))
    _set_head(copy, 0.0, head="mlp")
    with pytest.raises(ConfigError, match="head 'mlp'"):
        export_reward_model(copy, tmp_path / "out")
    _set_head(copy, head="linear", objective="classify", tie_model="davidson")
    with pytest.raises(ConfigError, match="classifier run"):
        export_reward_model(copy, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written by a refusal
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.slow
def test_cli_exit_codes_and_messages(runs, tmp_path, capsys):
    run, out = runs["full"], tmp_path / "hf"
    assert cli_main(["export", str(run), "--out", str(out)]) == 0
    said = capsys.readouterr().err
    assert "LlamaForSequenceClassification" in said and "pad '<pad>' id 0" in said
    for argv, says in (
        ([], "already exists; pass --overwrite"),
        (["--dtype", "float64"], "dtype must be one of"),
        (["--pad-token", "<eos>", "--overwrite"], "a token the run's sequences end with"),
        (["--pad-token", "▁the", "--overwrite"], "not a special token"),
    ):
        assert cli_main(["export", str(run), "--out", str(out), *argv]) == 1
        err = capsys.readouterr().err
        assert "arena-fast export: error: " in err and says in err, err
        assert "Traceback" not in err
    assert cli_main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 1
    assert "not a training run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli_main(["export", str(run)])  # --out is required: a usage error
    assert exit_.value.code == 2
    assert cli_main(["export", str(run), "--out", str(out), "--overwrite"]) == 0


@pytest.mark.slow
def test_the_pad_is_a_special_token_no_sequence_ends_with(shared_dir):
    demo = af.Tokenizer.demo()
    demo_file = DEMO_DIR / "tokenizer.json"
    assert choose_pad(demo_file, demo, {1}) == demo.token_to_id("<pad>")
    with pytest.raises(ConfigError, match="end with"):
        choose_pad(demo_file, demo, {1}, pad_token="<eos>")
    with pytest.raises(ConfigError, match="BOS"):
        choose_pad(demo_file, demo, {1}, pad_token="<bos>")
    # the tokenizer's own pad ends sequences, and no other special token is
    # named like a pad: refused, naming the way out
    with pytest.raises(ConfigError, match="no special token can pad.*pad_token="):
        choose_pad(demo_file, demo, {1, demo.token_to_id("<pad>")})
    # Llama 3 has no pad token and its chat template ends with <|eot_id|>
    llama_dir = shared_dir / "tokenizers" / "llama3"
    llama = af.Tokenizer.from_file(llama_dir)
    eot = llama.token_to_id("<|eot_id|>")
    chosen = choose_pad(llama_dir / "tokenizer.json", llama, {eot})
    assert llama.id_to_token(chosen) == "<|reserved_special_token_0|>"
    # Gemma 3 has its own <pad>
    gemma_dir = shared_dir / "tokenizers" / "gemma3"
    gemma = af.Tokenizer.from_file(gemma_dir)
    ends = {gemma.token_to_id("\n"), gemma.token_to_id("<end_of_turn>")}
    assert gemma.id_to_token(choose_pad(gemma_dir / "tokenizer.json", gemma, ends)) == "<pad>"


@pytest.mark.slow
def test_a_chat_template_run_scores_apply_chat_template_ids(shared_dir, tmp_path):
    """A run on Llama 3's chat template: the export carries the template, pads
    with a token that is not <|eot_id|>, and scores the ids of
    `apply_chat_template` (padded with a longer conversation) as the run does."""
    llama = shared_dir / "tokenizers" / "llama3"
    data = build_rows(
        keyword_rows(16, 0), tmp_path, max_length=96, folds=2, template="chat", tokenizer=str(llama)
    )
    run = _train(data, tmp_path / "run", max_steps=2)
    out = tmp_path / "hf"
    result = export_reward_model(run, out)
    assert result["chat_template"]
    tok = AutoTokenizer.from_pretrained(out)
    manifest = json.loads((data / "manifest.json").read_text())
    assert tok.chat_template == manifest["encoder"]["chat_template"]
    assert tok.pad_token == "<|reserved_special_token_0|>" != "<|eot_id|>"
    short = [{"role": "user", "content": "Which is better?"}, {"role": "assistant", "content": "A"}]
    long = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name three colours."},
        {"role": "assistant", "content": "Red, green and blue, the primaries of light."},
    ]
    sequences = [
        tok.apply_chat_template(m, tokenize=True, return_dict=True)["input_ids"]
        for m in (short, long)
    ]
    # this template ends every sequence with an assistant header ("\n\n"
    # last), as the dataset's rows do; never with the pad
    encoded = load_dataset(data).encoded
    assert int(encoded[0][-1]) == sequences[0][-1] == sequences[1][-1] != tok.pad_token_id
    assert int(encoded[0][0]) == sequences[0][0] == tok.convert_tokens_to_ids("<|begin_of_text|>")
    theirs, _ = _their_rewards(out, sequences)
    ours = _our_rewards(run, af.Encoded.from_lists(sequences), [0, 1])
    assert torch.allclose(theirs, ours, atol=1e-5, rtol=0), (theirs, ours)
    # TRL's GRPO trainer renders the text, then tokenizes it without special
    # tokens, padded on the right: the same ids, the same rewards
    texts = [tok.apply_chat_template(m, tokenize=False) for m in (short, long)]
    trl = tok(
        text=texts,
        return_tensors="pt",
        padding=True,
        padding_side="right",
        add_special_tokens=False,
    )
    for row, mask, ids in zip(trl["input_ids"], trl["attention_mask"], sequences):
        assert row[mask.bool()].tolist() == ids
    with torch.no_grad():
        grpo = AutoModel.from_pretrained(out, num_labels=1).eval()(**trl).logits[:, 0].double()
    assert torch.allclose(grpo, ours, atol=1e-5, rtol=0)
