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
    ({"name": "x", "train": {"stages": [{"levels": [7], "examples": 5}]}}, r"levels 1\.\.4"),
    ({"description": "no name"}, r"missing field 'name'"),
    ({"name": "x", "train": {"family_weights": {"ages": -1}}}, r"train\.family_weights.*'ages': -1"),
])
def test_bad_recipes_name_the_field(table, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(table)


def test_malformed_toml_names_the_file(models):
    (models / "broken.toml").write_text('name = "broken"\n[model\n')
    with pytest.raises(RecipeError, match="broken.toml"):
        load_recipe("broken")
