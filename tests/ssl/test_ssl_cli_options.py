"""One set of SSL options on every pipeline command: --budget --epochs --backbone --weights --set resolve the same
way for audit, pretrain and embed."""
import pytest

from curator.cli import build_parser
from curator.cli.audit import pipeline_overrides
from pipelines.recipes import load_recipe


@pytest.mark.parametrize("command", ["audit", "pretrain", "embed"])
def test_ssl_shortcuts_on_every_command(command, tmp_path):
    w = tmp_path / "my 'weights'.pt"
    w.write_bytes(b"x")
    args = build_parser().parse_args([command, "--budget", "2.5", "--epochs", "7", "--backbone", "torchvision:resnet50",
                                      "--weights", str(w), "--set", "ssl.image_size=64"])
    over = pipeline_overrides(args)
    rec = load_recipe("imagefolder", overrides=over)
    assert (rec.ssl.budget_minutes, rec.ssl.epochs, rec.ssl.backbone, rec.ssl.weights, rec.ssl.image_size) == \
        (2.5, 7, "torchvision:resnet50", str(w), 64)


def test_budget_or_weights_replace_a_recipe_files_epochs(tmp_path):
    assert load_recipe("digits").ssl.epochs == 40
    assert load_recipe("digits", overrides=["ssl.budget_minutes=1"]).ssl.epochs is None
    assert load_recipe("digits", overrides=["ssl.budget_minutes=1", "ssl.epochs=3"]).ssl.epochs == 3
    w = tmp_path / "w.pt"
    w.write_bytes(b"x")
    assert load_recipe("digits", overrides=[f"ssl.weights='{w}'"]).ssl.epochs is None
