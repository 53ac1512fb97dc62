"""The explicit registries (adapters, CLI commands, benchmarks, hygiene checks) list every module written for them:
a module that exists but is not listed is a forgotten registry line, and nothing is skipped silently."""
from pathlib import Path

import curator

PKG = Path(curator.__file__).resolve().parent


def _modules(folder: str, needle: str) -> set[str]:
    return {p.stem for p in (PKG / folder).glob("*.py") if needle in p.read_text(encoding="utf-8")}


def test_every_adapter_module_is_registered():
    from curator.data import registry

    listed = {spec.loader.__module__.rsplit(".", 1)[1] for spec in registry.ADAPTERS.values()}
    assert listed == _modules("data/adapters", "ADAPTER_SPECS = [")


def test_every_command_and_benchmark_module_is_registered():
    from curator import cli
    from curator.cli import bench

    assert {m.__name__.rsplit(".", 1)[1] for m in cli.COMMANDS} == _modules("cli", "\ndef register(")
    assert {m.__name__.rsplit(".", 1)[1] for m in bench.BENCHMARKS} == _modules("bench", "\ndef run(")
    assert len({m.NAME for m in bench.BENCHMARKS}) == len(bench.BENCHMARKS)


def test_every_hygiene_check_module_is_registered():
    from curator.hygiene import registry

    assert {type(c).__module__.rsplit(".", 1)[1] for c in registry.CHECKS} == _modules("hygiene/kinds", "(HygieneCheck):")


def test_each_recipe_of_the_architecture_page_names_the_test_that_exercises_it():
    import re

    root = PKG.parent
    text = (root / "ARCHITECTURE.md").read_text(encoding="utf-8")
    recipes = re.split(r"\n### ", text.split("## How to add", 1)[1].split("\n## ", 1)[0])[1:]
    assert [r.splitlines()[0] for r in recipes] == ["a dataset", "an SSL method", "a head", "a signal",
                                                    "a hygiene check"]
    for r in recipes:
        tests = re.findall(r"`(tests/[\w/]+\.py)`", r)
        assert tests and all((root / t).is_file() for t in tests), r.splitlines()[0]
