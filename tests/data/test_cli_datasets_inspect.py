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


def _image_folder(root):
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((4, 4, 3), 40 * i, np.uint8)).save(root / c / f"{i}.png")
    return root


def test_root_without_dataset_is_inferred_never_the_demo(tmp_path, capsys):
    from curator.data.registry import infer_dataset

    folder = _image_folder(tmp_path / "pets")
    assert main(["inspect", "--root", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_samples"] == 6 and out["n_classes"] == 2                   # the folder, not the 1,797 digits
    pd.DataFrame({"path": ["cat/0.png"], "label": ["cat"]}).to_csv(folder / "m.csv", index=False)
    assert infer_dataset(folder / "m.csv") == "csv" and infer_dataset(folder) == "imagefolder"
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    capsys.readouterr()
    assert main(["inspect", "--root", str(tmp_path / "junk")]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot tell what dataset" in err and "--dataset" in err and len(err.splitlines()) == 1
    assert main(["audit", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_failed_audit_leaves_no_run_directory(tmp_path, capsys):
    out, root = tmp_path / "run", tmp_path / "c1m"
    root.mkdir()
    assert main(["audit", "--dataset", "clothing1m", "--root", str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "noisy_label_kv.txt, noisy_train_key_list.txt" in err and "by request" in err
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    kept = tmp_path / "mine"
    kept.mkdir()                                                              # a folder the user made is left alone
    assert main(["audit", "--dataset", "clothing1m", "--root", str(root), "--out", str(kept)]) == 2
    assert kept.is_dir()


def test_export_summary_is_said_once_in_plain_words():
    from curator.cli.export import describe_export

    text = describe_export({"n_rows": 698, "n_dropped": 39, "n_relabelled": 173, "out": "clean.parquet",
                            "weights": "clean.weights.npy", "dropped_for": {"label": 38, "review": 1}})
    assert text.startswith("exported 698 of 737 samples to clean.parquet: 525 with their given label, 173 relabelled.")
    assert "Left out: 39 (38 flagged as label issues; 1 by your review decisions)" in text


def test_export_command_prints_its_summary_once(tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.fixtures_run import write_fixture_run

    run = write_fixture_run(tmp_path / "run")
    assert main(["export", str(run), "--policy", "relabel", "--out", str(tmp_path / "r.parquet")]) == 0
    both = capsys.readouterr()
    text = both.out + both.err
    assert text.count("exported") == 1 and text.count("relabelled") == 1 and "dropped" not in text
    table = pd.read_parquet(tmp_path / "r.parquet")
    n_relabelled = int((table["label"] != table["original_label"]).sum())
    assert f"{len(table) - n_relabelled:,} with their given label, {n_relabelled:,} relabelled" in text
