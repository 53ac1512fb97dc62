import json

import numpy as np
import pandas as pd
from PIL import Image

from curator.cli import main


def test_datasets_json_lists_adapters(capsys):
    assert main(["datasets", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {a["name"]: a for a in out["adapters"]}
    assert {"digits", "cifar10", "cifar10n", "clothing1m", "imagefolder", "csv", "parquet"} <= set(names)
    assert "noisy_label_kv.txt" in names["clothing1m"]["root_layout"]
    assert main(["datasets"]) == 0
    assert "cifar-10-batches-py" in capsys.readouterr().out


def test_inspect_json_on_corrupted_digits(capsys):
    assert main(["inspect", "--json", "--imbalance", "exp", "--gamma", "10", "--noise", "uniform", "--noise-rate", "0.4"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("n_samples", "n_classes", "class_counts", "imbalance_ratio", "shot_groups", "noise_rate", "problems", "corruption"):
        assert key in out
    assert sum(out["class_counts"]) == out["n_samples"] and out["n_classes"] == 10
    assert out["corruption"]["same_class_counts_as_noise"] is False
    assert abs(out["noise_rate"] - out["corruption"]["realised_noise_rate"]) < 1e-12


def test_inspect_table_and_check_images(tmp_path, capsys):
    for i in range(4):
        Image.fromarray(np.full((4, 4), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")  # grayscale
    (tmp_path / "bad.png").write_bytes(b"nope")
    pd.DataFrame({"path": [f"{i}.png" for i in range(4)] + ["bad.png"], "label": ["a", "b", "a", "b", "a"]}).to_csv(tmp_path / "m.csv", index=False)
    assert main(["inspect", "--dataset", "csv", "--root", str(tmp_path / "m.csv"), "--check-images"]) == 0
    text = capsys.readouterr().out
    assert "imbalance" in text and "shot groups" in text and "unreadable_image" in text and "grayscale_image" in text
    assert main(["inspect", "--dataset", "csv", "--root", str(tmp_path / "m.csv"), "--check-images", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # conversions are notes, not problems
    assert out["n_samples"] == 4 and out["problems"]["by_kind"] == {"unreadable_image": 1}
    assert out["notes"]["by_kind"] == {"inferred_classes": 1, "grayscale_image": 4}


def test_clear_errors_exit_2(tmp_path, capsys):
    assert main(["inspect", "--dataset", "nosuch"]) == 2
    assert "unknown dataset 'nosuch'" in capsys.readouterr().err
    assert main(["inspect", "--dataset", "cifar10", "--root", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["inspect", "--dataset", "cifar10", "--root", str(tmp_path)]) == 2
    assert "cifar-10-batches-py" in capsys.readouterr().err
    assert main(["inspect", "--dataset", "clothing1m"]) == 2
    assert "--root" in capsys.readouterr().err
