import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models"


@pytest.fixture
def models(tmp_path, monkeypatch):
    """A models/ folder in tmp with the shipped recipes, so tests never touch the real one."""
    d = tmp_path / "models"
    d.mkdir()
    for toml in SHIPPED.glob("*.toml"):
        shutil.copy(toml, d)
    monkeypatch.setenv("TRACETUTOR_MODELS", str(d))
    return d


@pytest.fixture(scope="session")
def trained_micro(tmp_path_factory):
    """The micro recipe trained once for the session: (recipe, metrics)."""

    from tracetutor.recipe import load_recipe
    from tracetutor.pipeline import prepare_data, prepare_model, prepare_tokenizer

    d = tmp_path_factory.mktemp("session") / "models"
    d.mkdir()
    shutil.copy(SHIPPED / "micro.toml", d)
    recipe = load_recipe(d / "micro.toml")
    prepare_data(recipe)
    prepare_tokenizer(recipe)
    metrics = prepare_model(recipe)
    return recipe, metrics
