"""The one prompt format: training and serving see the same tokens for the same example."""

from __future__ import annotations

import pytest
from agent_helpers import make_tiny_model_dir, smollm2_tokenizer

from agent.core.prompt import ErrorFeedback, Example, build_messages, prompt_token_ids, training_record

SCHEMA = (
    "Node properties:\nCustomer {name: STRING, city: STRING [\"Berlin\", \"Paris\"]}\nOrder {total: FLOAT}\n"
    "Relationship properties:\nThe relationships:\n(:Customer)-[:PLACED]->(:Order)"
)
CASES = [
    pytest.param(
        "How many customers are there?", "MATCH (c:Customer) RETURN count(c)", (), None, id="zero-shot"
    ),
    pytest.param(
        "Which customers live in Berlin?",
        "MATCH (c:Customer {city: 'Berlin'})\nRETURN c.name",
        (
            Example("How many orders?", "MATCH (o:Order) RETURN count(o)"),
            Example("Customers in Paris?", "MATCH (c:Customer {city: 'Paris'}) RETURN c.name"),
        ),
        None,
        id="few-shot",
    ),
    pytest.param(
        "Total spent by Alice?",
        "MATCH (c:Customer {name: 'Alice'})-[:PLACED]->(o:Order) RETURN sum(o.total)",
        (),
        ErrorFeedback("MATCH (c:Customer)<-[:PLACED]-(o) RETURN sum(o.total)", "wrong direction"),
        id="correction",
    ),
]


@pytest.fixture(scope="session")
def tokenizer():
    return smollm2_tokenizer()


@pytest.fixture(scope="session")
def sft_prepare(tmp_path_factory, tokenizer):
    """trl's own dataset preparation (SFTTrainer on a tiny model) applied to a list of records."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    model_dir = make_tiny_model_dir(tmp_path_factory.mktemp("tiny_sft"))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    out = tmp_path_factory.mktemp("sft_out")

    def prepare(records: list[dict]) -> list[dict]:
        args = SFTConfig(
            output_dir=str(out),
            report_to=[],
            max_length=4096,
            per_device_train_batch_size=2,
            use_cpu=True,
            dataset_num_proc=None,
        )
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(records), processing_class=tokenizer
        )
        return [dict(row) for row in trainer.train_dataset]

    return prepare


def test_chat_template_is_chatml(tokenizer):
    text = tokenizer.apply_chat_template(
        build_messages("q?", SCHEMA), add_generation_prompt=True, tokenize=False
    )
    assert text.startswith("<|im_start|>system\nYou write Cypher queries")
    assert text.endswith("<|im_start|>user\nq?<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("question, cypher, examples, feedback", CASES)
def test_train_and_serve_tokens_are_identical(sft_prepare, tokenizer, question, cypher, examples, feedback):
    record = training_record(question, cypher, SCHEMA, examples, feedback)
    row = sft_prepare([record])[0]
    input_ids = list(row["input_ids"])
    # trl 1.x folds the completion mask into labels (-100 = no loss); older versions keep completion_mask.
    mask = [int(x != -100) for x in row["labels"]] if "labels" in row else list(row["completion_mask"])

    serve_ids = prompt_token_ids(tokenizer, build_messages(question, SCHEMA, examples, feedback))
    n = len(serve_ids)
    # The training sequence starts with exactly the serving prompt, and the loss starts right after it.
    assert input_ids[:n] == serve_ids
    assert mask[:n] == [0] * n and all(mask[n:])
    # What the model is trained to write is the Cypher, then the end-of-turn token it stops on.
    completion = input_ids[n:]
    cypher_ids = tokenizer(cypher, add_special_tokens=False)["input_ids"]
    assert completion[: len(cypher_ids)] == cypher_ids
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert completion[len(cypher_ids)] == im_end
    assert tokenizer.decode(completion, skip_special_tokens=True).strip() == cypher


def test_training_record_shape():
    rec = training_record("q?", " MATCH (n) RETURN n ", SCHEMA)
    assert [m["role"] for m in rec["prompt"]] == ["system", "user"]
    assert rec["completion"] == [{"role": "assistant", "content": "MATCH (n) RETURN n"}]
    assert rec["prompt"] == build_messages("q?", SCHEMA)


def test_prompt_contains_schema_examples_and_feedback():
    msgs = build_messages(
        "Q?",
        SCHEMA,
        [Example("a?", "MATCH (a) RETURN a")],
        ErrorFeedback("MATCH (x) RETURN y", "Variable `y` not defined"),
    )
    assert SCHEMA in msgs[0]["content"] and "Question: a?\nCypher: MATCH (a) RETURN a" in msgs[0]["content"]
    assert "MATCH (x) RETURN y" in msgs[1]["content"] and "Variable `y` not defined" in msgs[1]["content"]


def test_pruned_schema_text_keeps_what_the_question_needs():
    """The agent prompts with ``GraphSchema.to_text(question, max_chars)``: a big schema shrinks to the
    question."""
    from agent.graphdb.base import GraphSchema, NodeLabel, Pattern, Property, RelType

    labels = tuple(
        NodeLabel(f"Thing{i}", (Property("name", "STRING"), Property(f"field{i}", "INTEGER")))
        for i in range(60)
    )
    labels += (
        NodeLabel("Customer", (Property("name", "STRING"),)),
        NodeLabel("Order", (Property("total", "FLOAT"),)),
    )
    schema = GraphSchema(labels, (RelType("PLACED"),), (Pattern("Customer", "PLACED", "Order"),))
    full = schema.to_text()
    pruned = schema.to_text("Which customer placed the largest order?", max_chars=400)
    assert len(pruned) <= 400 < len(full)
    assert "Customer {" in pruned and "Order {" in pruned and "(:Customer)-[:PLACED]->(:Order)" in pruned


def test_a_cut_sample_list_says_how_many_more():
    """Issue 16: 5 of 6 authors shown without a word reads as all of them, to a model and to a person."""
    from agent.graphdb.base import GraphSchema, NodeLabel
    from agent.graphdb.falkor import infer_properties

    authors = [{"author": a} for a in ("Austen", "Borges", "Calvino", "Dickens", "Eco", "Fontane")]
    few = [{"author": a} for a in ("Austen", "Borges")]
    cut = GraphSchema((NodeLabel("Book", infer_properties(authors)),)).to_text()
    whole = GraphSchema((NodeLabel("Book", infer_properties(few)),)).to_text()
    assert 'Book {author: STRING ["Austen", "Borges", "Calvino", "Dickens", "Eco", … 1 more]}' in cut
    assert 'Book {author: STRING ["Austen", "Borges"]}' in whole
