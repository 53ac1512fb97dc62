"""One set of SSL options on every pipeline command: --budget --epochs --backbone --weights --set resolve the same
way for audit, pretrain and embed; the command line's values reach the typed recipe as typed values."""
import pytest

from curator.cli import build_parser
from curator.cli.audit import ssl_options
from curator.ssl.resolve import apply_run_options
from pipelines.recipes import load_recipe


@pytest.mark.parametrize("command", ["audit", "pretrain", "embed"])
def test_ssl_options_on_every_command_arrive_typed(command, tmp_path):
    w = tmp_path / "my 'weights'.pt"
    w.write_bytes(b"x")
    args = build_parser().parse_args([command, "--budget", "2.5", "--epochs", "7", "--backbone", "torchvision:resnet50",
                                      "--weights", str(w), "--set", "ssl.image_size=64", "--set", "ssl.epochs=9"])
    given = ssl_options(args)
    assert given == {"budget_minutes": 2.5, "epochs": 7, "backbone": "torchvision:resnet50", "weights": str(w)}
    assert isinstance(given["budget_minutes"], float) and isinstance(given["epochs"], int)   # never TOML text
    rec = load_recipe("imagefolder", overrides=args.overrides, ssl=given)
    assert (rec.ssl.budget_minutes, rec.ssl.epochs, rec.ssl.backbone, rec.ssl.weights, rec.ssl.image_size) == \
        (2.5, 7, "torchvision:resnet50", str(w), 64)                  # the option wins over --set for the same key
    assert rec.record()["ssl_options"] == given


def test_budget_or_weights_replace_a_recipe_files_epochs(tmp_path):
    assert load_recipe("digits").ssl.epochs == 40
    assert load_recipe("digits", overrides=["ssl.budget_minutes=1"]).ssl.epochs is None
    assert load_recipe("digits", ssl={"budget_minutes": 1.0}).ssl.epochs is None
    assert load_recipe("digits", overrides=["ssl.budget_minutes=1", "ssl.epochs=3"]).ssl.epochs == 3
    assert load_recipe("digits", overrides=["ssl.epochs=3"], ssl={"budget_minutes": 1.0}).ssl.epochs == 3
    w = tmp_path / "w.pt"
    w.write_bytes(b"x")
    assert load_recipe("digits", overrides=[f"ssl.weights='{w}'"]).ssl.epochs is None
    assert load_recipe("digits", ssl={"weights": str(w)}).ssl.epochs is None
    # the rule itself, in its one home
    assert apply_run_options({"epochs": 40, "method": "byol"}, {"budget_minutes": 2.0}) == \
        {"method": "byol", "budget_minutes": 2.0}
    assert apply_run_options({"epochs": 40}, {"backbone": "resnet18"}) == {"epochs": 40, "backbone": "resnet18"}
