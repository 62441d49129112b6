import pytest

from tracetutor.recipe import RecipeError, load_recipe, parse_recipe, shipped_recipes


def test_every_shipped_recipe_loads(models):
    names = [p.stem for p in shipped_recipes()]
    assert {"tiny-tutor", "tiny-tutor-answers", "micro"} <= set(names)
    for name in names:
        r = load_recipe(name)
        assert r.name == name, f"{name}.toml names itself {r.name!r}"
        assert r.train.total_examples > 0


def test_default_is_kquant_ready_and_ablation_matches(models):
    tt, ans = load_recipe("tiny-tutor"), load_recipe("tiny-tutor-answers")
    assert tt.model.kquant_ready
    assert (tt.train.mode, ans.train.mode) == ("traces", "answers")
    # the ablation differs in targets only: same model, data, tokenizer and steps
    assert tt.model == ans.model and tt.data == ans.data and tt.tokenizer == ans.tokenizer
    assert tt.train.stages == ans.train.stages and tt.train.batch_size == ans.train.batch_size
    assert tt.train.family_weights == ans.train.family_weights


def test_unknown_recipe_lists_known_ones(models):
    with pytest.raises(RecipeError, match=r"no recipe 'nope'.*tiny-tutor"):
        load_recipe("nope")


@pytest.mark.parametrize("table, message", [
    ({"name": "x", "train": {"mode": "essay"}}, r"train\.mode.*traces, answers.*'essay'"),
    ({"name": "x", "model": {"hidden_size": 100, "num_heads": 3}}, r"model\.hidden_size"),
    ({"name": "x", "model": {"widht": 3}}, r"\[model\].*unknown field\(s\) widht"),
    ({"name": "x", "train": {"stages": [{"levels": [7], "examples": 5}]}}, r"levels from 1, 2, 3, 4, got \[7\]"),
    ({"description": "no name"}, r"missing field 'name'"),
    ({"name": "x", "train": {"family_weights": {"ages": -1}}}, r"train\.family_weights.*'ages': -1"),
    # every value is checked against its field's type
    ({"name": "x", "data": {"n_train": "four hundred"}}, r"data\.n_train: expected an integer, got 'four hundred'"),
    ({"name": "x", "model": {"hidden_size": 64.0}}, r"model\.hidden_size: expected an integer, got 64\.0"),
    ({"name": "x", "model": {"tie_embeddings": 1}}, r"model\.tie_embeddings: expected true or false, got 1"),
    ({"name": "x", "model": {"num_heads": 0}}, r"model\.num_heads: must be positive, got 0"),
    ({"name": "x", "bench": {"heldout": 0}}, r"bench\.heldout: must be positive, got 0"),
    ({"name": 5}, r"name: expected a string, got 5"),
    ({"name": "x", "data": 3}, r"data: expected a table, got 3"),
    ({"name": "x", "data": {"levels": [1, "2"]}}, r"data\.levels\[1\]: expected an integer, got '2'"),
    ({"name": "x", "data": {"families": "ages"}}, r"data\.families: expected a list, got 'ages'"),
    ({"name": "x", "train": {"family_weights": 5}}, r"train\.family_weights: expected a table, got 5"),
    ({"name": "x", "train": {"family_weights": {"ages": "2"}}}, r"train\.family_weights\.ages: expected a number"),
    ({"name": "x", "train": {"family_weights": {"ages": True}}}, r"train\.family_weights\.ages: expected a number"),
    ({"name": "x", "train": {"stages": [{"levels": [1], "examples": 8}, 4]}}, r"train\.stages #2: expected a table"),
    ({"name": "x", "train": {"stages": [{"levels": [1], "examples": 8.5}]}},
     r"\[\[train\.stages\]\] #1: train\.stages\.examples: expected an integer, got 8\.5"),
    ({"name": "x", "train": {"stages": [{"levels": [1]}]}}, r"\[\[train\.stages\]\] #1: missing field 'examples'"),
])
def test_bad_recipes_name_the_field(table, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(table)


def test_malformed_toml_names_the_file(models):
    (models / "broken.toml").write_text('name = "broken"\n[model\n')
    with pytest.raises(RecipeError, match="broken.toml"):
        load_recipe("broken")


def test_a_float_field_takes_an_integer_as_written():
    r = parse_recipe({"name": "x", "model": {"rope_theta": 10000},
                      "train": {"learning_rate": 1, "family_weights": {"ages": 2}}})
    assert (r.model.rope_theta, r.train.learning_rate, r.train.family_weights) == (10000, 1, {"ages": 2})
    assert r.data.families is None
