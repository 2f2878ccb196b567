"""Models, fusion and heads on tiny configs."""

import itertools
import json

import pytest
import torch
from helpers import GRID_LABELS, NER_LABELS, build_model, random_inputs, tiny_config
from transformers import AutoConfig

from modeling_shapca import (
    ShapCAConfig,
    ShapCAForTokenClassification,
    ShapCAForWordPairTagging,
    ShapCAModel,
    ShapCAWordPairConfig,
)
from modeling_shapca.fusion import context_bias
from modeling_shapca.heads import CRFTagger, bio_transition_constraints
from modeling_shapca.shapley import MAX_EXACT_PLAYERS, cosine_similarities


def test_alignment_loss_alone_reaches_both_encoders(ner_config):
    model = ShapCAModel(ner_config).train()
    out = model(**random_inputs(batch=4), output_alignment_losses=True)
    (out.loss_semantic + out.loss_modality).backward()
    text_grad = model.text_model.embeddings.word_embeddings.weight.grad
    vision_grads = [p.grad for p in model.vision_model.parameters() if p.grad is not None]
    assert text_grad is not None and text_grad.abs().sum() > 0
    assert vision_grads and sum(g.abs().sum() for g in vision_grads) > 0
    assert model.vision_projection.weight.grad.abs().sum() > 0


def test_single_example_batch_has_zero_alignment_and_finite_loss(ner_config):
    model = build_model(ner_config).train()
    out = model(labels=torch.zeros(1, 5, dtype=torch.long), **random_inputs(batch=1))
    assert out.loss_semantic.item() == 0.0 and out.loss_modality.item() == 0.0
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def pad_inputs(inputs, extra_words=3, extra_tokens=4):
    """The same examples with padding words and padding tokens appended."""
    padded = dict(inputs)
    for name in ("input_ids", "attention_mask", "token_type_ids", "context_mask"):
        padded[name] = torch.nn.functional.pad(inputs[name], (0, extra_tokens))
    padded["word_index"] = torch.nn.functional.pad(inputs["word_index"], (0, extra_words), value=-1)
    padded["pos_ids"] = torch.nn.functional.pad(inputs["pos_ids"], (0, extra_words))
    return padded


@pytest.mark.parametrize("head", ["crf", "word_pair"])
def test_padding_never_changes_outputs(head):
    model = build_model(tiny_config(head))
    inputs = random_inputs()
    # A shorter second example: its last two words and three tokens are padding already.
    inputs["word_index"][1, 3:] = -1
    inputs["attention_mask"][1, -3:] = 0
    inputs["context_mask"][1, -3:] = 0
    with torch.no_grad():
        plain = model(**inputs).logits
        padded = model(**pad_inputs(inputs)).logits
    if head == "crf":
        torch.testing.assert_close(padded[:, :5], plain)
        mask = inputs["word_index"] >= 0
        torch.testing.assert_close(
            model.decode(padded, pad_inputs(inputs)["word_index"] >= 0)[:, :5], model.decode(plain, mask)
        )
    else:
        torch.testing.assert_close(padded[:, :5, :5], plain)


def test_example_without_image_ignores_its_pixels(ner_config):
    model = build_model(ner_config)
    inputs = random_inputs()
    inputs["image_mask"][1] = 0
    other = dict(inputs, pixel_values=inputs["pixel_values"].clone())
    other["pixel_values"][1] = 0.0
    with torch.no_grad():
        first, second = model(**inputs).logits, model(**other).logits
    torch.testing.assert_close(first[1], second[1])


def test_context_bias_ignores_padding():
    context = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    bias = context_bias(context, mask)
    # B = mean over rows of C^T C / sqrt(D), with C the real tokens only.
    real = context[0, :3]
    torch.testing.assert_close(bias[0], (real.T @ real).mean(dim=0) / 8**0.5)
    changed = context.clone()
    changed[0, 3:] = 100.0
    torch.testing.assert_close(context_bias(changed, mask)[0], bias[0])


def is_valid_bio(tags):
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


def test_crf_decoding_is_always_valid_bio():
    id2label = dict(enumerate(NER_LABELS))
    tagger = CRFTagger(4, 8, id2label)
    torch.manual_seed(0)
    with torch.no_grad():
        # Transitions that favour invalid steps, and emissions that shout for I- tags.
        tagger.crf.transitions.normal_(0, 5)
        tagger.crf.start_transitions.normal_(0, 5)
        emissions = torch.randn(64, 9, len(NER_LABELS)) * 5
        emissions[..., 2] += 3.0  # I-PER
        word_mask = torch.arange(9)[None, :] < torch.randint(1, 10, (64, 1))
        tags = tagger.decode(emissions, word_mask)
    assert (tags[~word_mask] == -100).all()
    for row, mask in zip(tags, word_mask):
        assert is_valid_bio([NER_LABELS[t] for t in row[mask].tolist()])


def test_crf_decoding_is_the_best_valid_path():
    id2label = dict(enumerate(NER_LABELS))
    tagger = CRFTagger(4, 8, id2label)
    torch.manual_seed(1)
    emissions = torch.randn(1, 4, 5)
    crf = tagger.crf

    def score(path):
        total = crf.start_transitions[path[0]] + emissions[0, 0, path[0]]
        for step in range(1, len(path)):
            total = total + crf.transitions[path[step - 1], path[step]] + emissions[0, step, path[step]]
        return total + crf.end_transitions[path[-1]]

    valid = [p for p in itertools.product(range(5), repeat=4) if is_valid_bio([NER_LABELS[t] for t in p])]
    best = max(valid, key=lambda p: score(p).item())
    with torch.no_grad():
        decoded = tagger.decode(emissions, torch.ones(1, 4, dtype=torch.bool))
    assert tuple(decoded[0].tolist()) == best


def test_bio_constraints():
    allowed_start, allowed = bio_transition_constraints(dict(enumerate(NER_LABELS)))
    assert allowed_start.tolist() == [True, True, False, True, False]
    assert allowed[1, 2] and allowed[2, 2] and not allowed[0, 2] and not allowed[3, 2] and not allowed[1, 4]


def test_crf_rejects_unlabelled_words(ner_config):
    model = build_model(ner_config)
    labels = torch.zeros(3, 5, dtype=torch.long)
    labels[0, 2] = -100
    with pytest.raises(ValueError, match="needs a tag for every word"):
        model(labels=labels, **random_inputs())


def test_word_pair_probabilities_and_formula(pair_config):
    model = build_model(pair_config)
    inputs = random_inputs()
    with torch.no_grad():
        logits = model(**inputs).logits
        probabilities = logits.softmax(-1)
        torch.testing.assert_close(probabilities.sum(-1), torch.ones(3, 5, 5))
        # P^final = softmax(P^tsp + lambda * log(P^tsp / P^t)), recomputed from the head's parts.
        encoded = model.shapca(**inputs)
        head = model.head
        text_pairs = head.text_pairs(encoded.word_features)
        joint = torch.cat(
            [text_pairs, head.pos_pairs(encoded.pos_features), head.position_pairs(encoded.position_features)], -1
        )
        p_tsp = head.joint_classifier(joint).softmax(-1)
        p_t = head.text_classifier(text_pairs).softmax(-1)
        expected = torch.softmax(p_tsp + pair_config.wordpair_lambda * torch.log(p_tsp / p_t), -1)
    torch.testing.assert_close(probabilities, expected, rtol=1e-4, atol=1e-5)


def test_word_pair_loss_and_decode_ignore_lower_triangle(pair_config):
    model = build_model(pair_config)
    inputs = random_inputs()
    grid = torch.randint(0, len(GRID_LABELS), (3, 5, 5))
    out = model(labels=grid, **inputs)
    other = grid.clone()
    other[:, 3, 1] = (other[:, 3, 1] + 1) % len(GRID_LABELS)  # below the diagonal: ignored
    assert torch.isfinite(out.loss)
    torch.testing.assert_close(model(labels=other, **inputs).loss_main, out.loss_main)
    decoded = model.decode(out.logits, inputs["word_index"] >= 0)
    below_diagonal = torch.ones(5, 5, dtype=torch.bool).tril(-1)
    assert (decoded[:, below_diagonal] == -100).all()
    assert (decoded[:, ~below_diagonal] >= 0).all()


@pytest.mark.parametrize(
    "switches",
    [
        {"use_image": False},
        {"fusion_use_context": False},
        {"alignment_loss": "infonce"},
        {"alignment_loss": "none"},
        {"alignment_players": "direct"},
        {"alpha": 0.0, "beta": 0.0},
        {"sentence_pooling": "cls"},
        {"wordpair_contrastive": False, "head": "word_pair"},
    ],
)
def test_every_ablation_builds_trains_and_predicts(switches):
    head = switches.pop("head", "crf")
    config = tiny_config(head, **switches)
    model = build_model(config).train()
    inputs = random_inputs(batch=4, with_image=config.use_image)
    labels = torch.zeros(4, 5, dtype=torch.long) if head == "crf" else torch.zeros(4, 5, 5, dtype=torch.long)
    out = model(labels=labels, **inputs)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    if not config.use_image:
        assert not hasattr(model.shapca, "vision_model")
        assert out.loss_modality.item() == 0.0
    if config.alignment_loss == "none":
        assert out.loss_semantic.item() == 0.0 and out.loss_modality.item() == 0.0
    if config.alignment_players == "direct":
        assert out.loss_semantic.item() == 0.0 and out.loss_modality.item() != 0.0
    if not config.fusion_use_context:
        assert not hasattr(model.shapca.fusion, "query_gate")


def test_shapley_and_infonce_give_different_alignment():
    inputs = random_inputs(batch=4)
    losses = {}
    for kind in ("shapley", "infonce"):
        model = build_model(tiny_config(alignment_loss=kind))
        losses[kind] = model.shapca(**inputs, output_alignment_losses=True).loss_semantic.item()
    assert losses["shapley"] != pytest.approx(losses["infonce"])


def test_inference_plays_no_game_and_leaves_the_random_stream_alone():
    model = build_model(tiny_config()).eval()
    inputs = random_inputs(batch=12)
    state = torch.get_rng_state()
    out = model(**inputs)
    assert out.loss is None and out.loss_semantic is None and out.loss_modality is None  # no labels: no games
    values = model(**inputs, output_shapley_values=True, shapley_method="cyclic")  # the random orders of Algorithm 1
    assert torch.equal(torch.get_rng_state(), state)
    # The model's own generator starts from torch's seed: the same seed, the same estimate.
    torch.manual_seed(7)
    again = build_model(tiny_config()).eval()
    again.load_state_dict(model.state_dict())
    torch.manual_seed(7)
    model.shapca._shapley_generator = None
    first = model(**inputs, output_shapley_values=True, shapley_method="cyclic").shapley_context_text
    second = again(**inputs, output_shapley_values=True, shapley_method="cyclic").shapley_context_text
    torch.testing.assert_close(first, second, equal_nan=True)
    assert values.shapley_method == "cyclic"


def test_the_processor_returns_the_models_inputs(processor):
    from modeling_shapca import ShapCAInputs

    assert processor.model_input_names == list(ShapCAInputs.__annotations__)


def test_an_unknown_input_is_an_error():
    model = build_model(tiny_config()).eval()
    with pytest.raises(TypeError, match="overflow_to_sample_mapping"):
        model(**random_inputs(batch=2), overflow_to_sample_mapping=torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="spans"):
        model.shapca(**random_inputs(batch=2), spans=torch.zeros(2, 4))


def test_image_model_needs_pixels(ner_config):
    inputs = random_inputs()
    del inputs["pixel_values"]
    with pytest.raises(ValueError, match="no pixel_values"):
        build_model(ner_config)(**inputs)


def test_wrong_head_is_refused():
    with pytest.raises(ValueError, match="load the checkpoint with ShapCAForWordPairTagging"):
        ShapCAForTokenClassification(tiny_config("word_pair"))
    with pytest.raises(
        ValueError, match="not a ShapCAWordPairConfig: load the checkpoint with ShapCAForTokenClassification"
    ):
        ShapCAForWordPairTagging(tiny_config("crf"))


def test_config_errors_say_what_to_fix():
    with pytest.raises(Exception, match="alignment_loss must be one of"):
        ShapCAConfig(alignment_loss="cosine")
    with pytest.raises(Exception, match="divisible by fusion_num_heads"):
        ShapCAConfig(fusion_num_heads=7)
    with pytest.raises(Exception, match="mre_decision_cells must be one of"):
        ShapCAWordPairConfig(mre_decision_cells="corners")


def test_paper_configuration_parameter_count():
    # bert-base-uncased shape + ResNet-152, random weights: Table 4 gives 170.7M.
    model = ShapCAForTokenClassification(ShapCAConfig(id2label={i: t for i, t in enumerate(NER_LABELS)}))
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - 170.7e6) / 170.7e6 < 0.02, count


def test_output_shapley_values_exact_agree_with_algorithm_1_and_are_efficient(ner_config):
    model = build_model(ner_config)
    inputs = random_inputs(batch=4)
    exact = model(**inputs, output_shapley_values=True)
    assert exact.shapley_method == "exact"
    assert exact.shapley_context_text.shape == exact.shapley_context_image.shape == (4, 4)

    # Efficiency: the values of a game sum to the utility of all players, u_j(N), the
    # softmax(sim / tau)-weighted mean similarity of every context to text j (rows: texts).
    encoded = model.shapca(**inputs)
    for games, values in ((encoded.text_embeds, exact.shapley_context_text),
                          (encoded.image_embeds, exact.shapley_context_image)):  # fmt: skip
        sim = cosine_similarities(games, encoded.context_embeds)
        grand = ((sim / ner_config.tau).softmax(dim=-1) * sim).sum(dim=-1)
        assert torch.allclose(values.sum(dim=-1), grand, atol=1e-5)

    # Algorithm 1 walks one random order per call: each draw is efficient too, and, being unbiased,
    # the mean of many draws is the exact value.
    cyclic = model(**inputs, output_shapley_values=True, shapley_method="cyclic")
    assert cyclic.shapley_method == "cyclic"
    for name in ("shapley_context_text", "shapley_context_image"):
        assert torch.allclose(getattr(cyclic, name).sum(-1), getattr(exact, name).sum(-1), atol=1e-5)
    torch.manual_seed(0)
    playing = torch.ones(4, dtype=torch.bool)
    for games, values in ((encoded.text_embeds, exact.shapley_context_text),
                          (encoded.image_embeds, exact.shapley_context_image)):  # fmt: skip
        with torch.no_grad():
            draws = torch.stack(
                [model.shapca.shapley_values(games, encoded.context_embeds, playing, "cyclic") for _ in range(2000)]
            )
        standard_error = draws.std(dim=0) / len(draws) ** 0.5
        assert ((draws.mean(dim=0) - values).abs() <= 5 * standard_error + 1e-6).all()


def test_output_shapley_values_method_choice_and_missing_contexts(pair_config):
    model = build_model(pair_config)
    assert model(**random_inputs(batch=MAX_EXACT_PLAYERS + 1), output_shapley_values=True).shapley_method == "cyclic"
    inputs = random_inputs(batch=3)
    inputs["context_mask"][1] = 0  # example 1 has no context: it plays no game
    out = model(**inputs, output_shapley_values=True)
    assert out.shapley_method == "exact"
    values = out.shapley_context_text
    assert values[1].isnan().all() and values[:, 1].isnan().all()
    assert torch.isfinite(values[[0, 2]][:, [0, 2]]).all()
    assert model(**inputs).shapley_context_text is None  # off by default
    with pytest.raises(ValueError, match="shapley_method must be one of"):
        model(**inputs, output_shapley_values=True, shapley_method="sampled")


# -- issue 18, second round: a damaged checkpoint names the file and the field -------------------


@pytest.mark.parametrize(
    "field, value, error, message",
    [("alpha", "abc", TypeError, r"alpha must be a number, got 'abc' \(str\) \(in a checkpoint: its config.json\)"),
     ("fusion_num_heads", 0, ValueError, r"fusion_num_heads must be a positive integer, got 0"),
     ("head_hidden_size", -3, ValueError, r"head_hidden_size must be a positive integer, got -3")],
)  # fmt: skip
def test_a_config_json_with_a_bad_setting_names_it(tmp_path, field, value, error, message):
    import json

    from transformers import AutoConfig

    tiny_config("crf").save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config[field] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(Exception, match=message) as raised:
        AutoConfig.from_pretrained(tmp_path)
    assert isinstance(raised.value, error) or isinstance(raised.value.__cause__, error)


def test_truncated_weights_name_the_file_and_the_fix(tmp_path):
    build_model(tiny_config("crf")).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(OSError, match=r"model.safetensors\) cannot be read .* damaged or incomplete"):
        ShapCAForTokenClassification.from_pretrained(tmp_path)


def test_a_folder_without_the_processor_files_says_what_is_missing(tmp_path):
    from transformers import AutoProcessor

    import processing  # noqa: F401  (registers the processor)

    build_model(tiny_config("crf")).save_pretrained(tmp_path)
    with pytest.raises(OSError, match="has no processor_config.json: it holds a model without its processor"):
        AutoProcessor.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_hidden_layers", 1_000_000), ("hidden_size", 10_000_000), ("vocab_size", 2_000_000_000)],
)
def test_a_checkpoint_config_with_an_impossible_size_is_refused_when_read(tmp_path, field, value):
    # Before: 1e6 layers hung the load; a huge width or vocabulary failed in transformers' wrapped error.
    tiny_config("crf").save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["text_config"][field] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(Exception, match=f"text_config.{field} is {value}, above the"):
        AutoConfig.from_pretrained(tmp_path)


def test_an_unknown_vision_architecture_is_named_with_how_to_list_the_known_ones():
    with pytest.raises(Exception, match=r"Unknown vision architecture 'resnet9999'.*timm.list_models\('resnet\*'\)"):
        tiny_config("crf", vision_config={"architecture": "resnet9999"})
    tiny_config("crf", vision_config={"architecture": "resnet9999"}, use_image=False)  # no backbone: no check
