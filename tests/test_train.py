"""train.py end to end on a slice of MNIST, and the shipped model's accuracy and metadata."""

import hashlib
import json
import subprocess
import sys

import pytest
import torch

from model import checkpoint, mnist
from tests.conftest import ROOT


def run_script(script, out, mnist_dir, *extra):
    """A training script's quick run: one epoch on one thread, writing to `out`."""
    return subprocess.run(
        [sys.executable, script, "--data-dir", str(mnist_dir), "--epochs", "1", "--threads", "1",
         "--out", str(out), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def run_train(out, mnist_dir, *extra):
    return run_script("train.py", out, mnist_dir, "--limit", "512", "--batch-size", "64", *extra)


@pytest.mark.slow
def test_quick_run_writes_a_model_that_loads_and_is_deterministic(tmp_path, mnist_dir):
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    for out in (first, second):
        result = run_train(out, mnist_dir)
        assert result.returncode == 0, result.stderr
    net, meta = checkpoint.load(first)
    assert meta["train_images"] == 512 and len(meta["history"]) == 1
    assert 0 <= meta["test_accuracy"] <= 1 and len(meta["confusion_matrix"]) == 10
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    # Same seed, same CPU: the same weights, bit for bit.
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()


@pytest.mark.slow
def test_a_digit_model_of_other_widths_is_served_like_the_shipped_one(tmp_path, mnist_dir):
    from app.core.classifier import Classifier

    out = tmp_path / "narrow.safetensors"
    result = run_train(out, mnist_dir, "--channels", "8", "8", "16", "16", "32")
    assert result.returncode == 0, result.stderr
    meta = json.loads(checkpoint.metadata_path(out).read_text())
    assert meta["architecture"] == {"name": "DigitNet", "channels": [8, 8, 16, 16, 32], "classes": 10}
    probabilities = Classifier(out, "cpu").probabilities(torch.rand(2, 28, 28).numpy())
    assert probabilities.shape == (2, 10) and abs(probabilities.sum(1) - 1).max() < 1e-5


@pytest.mark.slow
def test_line_reader_quick_run_writes_a_model_the_service_reads_with(tmp_path, mnist_dir):
    from app.core.classifier import LineReader

    out = tmp_path / "lines.safetensors"
    result = run_script("train_lines.py", out, mnist_dir, "--lines", "256", "--written-digits", "64",
                        "--channels", "8", "8", "16", "16")
    assert result.returncode == 0, result.stderr
    meta = json.loads(checkpoint.metadata_path(out).read_text())
    assert meta["architecture"] == {"name": "LineNet", "channels": [8, 8, 16, 16], "classes": 11}
    assert meta["train_lines"] == 256
    assert 0 <= meta["test"]["line_accuracy"] <= 1 and len(meta["history"]) == 1
    scores = LineReader(out, "cpu").read(torch.rand(28, 120).numpy()).likelihoods(["1", "42", "9" * 40])
    assert scores.shape == (3,) and scores[2] == float("-inf")  # 40 digits cannot fit 30 steps


@pytest.mark.slow
def test_segment_reader_quick_run_writes_a_model_the_service_reads_with(tmp_path, mnist_dir):
    from app.core.classifier import Classifier

    out = tmp_path / "segments.safetensors"
    result = run_script("train_segments.py", out, mnist_dir, "--lines", "160", "--channels", "4", "8", "8", "16", "16")
    assert result.returncode == 0, result.stderr
    meta = json.loads(checkpoint.metadata_path(out).read_text())
    assert meta["architecture"] == {"name": "DigitNet", "channels": [4, 8, 8, 16, 16], "classes": 11}
    assert meta["classes"][-1] == "not one whole digit" and len(meta["history"]) == 1
    assert 0 <= meta["test"]["junk_recall"] <= 1 and meta["train_pieces"] > 160
    probabilities = Classifier(out, "cpu").probabilities(torch.rand(3, 28, 28).numpy())
    assert probabilities.shape == (3, 11) and abs(probabilities.sum(1) - 1).max() < 1e-5


def test_shipped_segment_reader_files():
    meta = json.loads(checkpoint.metadata_path(checkpoint.SEGMENTS_WEIGHTS).read_text())
    assert meta["architecture"]["classes"] == 11 and len(meta["classes"]) == 11
    assert meta["test"]["accuracy"] >= 0.95 and meta["test"]["junk_recall"] >= 0.95
    assert meta["weights_sha256"] == hashlib.sha256(checkpoint.SEGMENTS_WEIGHTS.read_bytes()).hexdigest()


def test_shipped_line_reader_files():
    meta = json.loads(checkpoint.metadata_path(checkpoint.LINES_WEIGHTS).read_text())
    assert meta["architecture"]["name"] == "LineNet" and meta["classes"][0] == "blank"
    assert meta["test"]["line_accuracy"] >= 0.85
    assert checkpoint.LINES_WEIGHTS.stat().st_size < 2_000_000
    assert meta["weights_sha256"] == hashlib.sha256(checkpoint.LINES_WEIGHTS.read_bytes()).hexdigest()


def test_offline_without_data_fails_with_one_clear_line(tmp_path):
    env_free = tmp_path / "empty"
    result = subprocess.run(
        [sys.executable, "-c", "import model.mnist as m, runpy, sys; m.MIRRORS = ('http://127.0.0.1:9/',);"
         f"sys.argv = ['train.py', '--data-dir', {str(env_free)!r}]; runpy.run_path('train.py', run_name='__main__')"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "could not be downloaded" in result.stderr and "--data-dir" in result.stderr


def test_shipped_model_files():
    weights = checkpoint.DEFAULT_WEIGHTS
    assert weights.stat().st_size < 5_000_000
    meta = json.loads(checkpoint.metadata_path(weights).read_text())
    for key in ("architecture", "input", "test_accuracy", "per_class_accuracy", "confusion_matrix", "history",
                "training", "data_md5", "torch_version", "git_commit", "weights_sha256"):
        assert key in meta, key
    assert meta["test_accuracy"] >= 0.996
    assert sum(map(sum, meta["confusion_matrix"])) == 10000
    assert {"epoch", "train_loss", "test_loss", "test_accuracy", "elapsed_s"} <= set(meta["history"][0])


@pytest.mark.slow
def test_shipped_model_accuracy_on_mnist(mnist_dir):
    images, labels = mnist.load("test", mnist_dir, fetch=False)
    net, _ = checkpoint.load(checkpoint.DEFAULT_WEIGHTS)
    with torch.inference_mode():
        predicted = torch.cat([net(images[i:i + 1000].unsqueeze(1).float() / 255).argmax(1)
                               for i in range(0, 10000, 1000)])
    accuracy = (predicted == labels.long()).float().mean().item()
    assert accuracy >= 0.995, f"shipped model scores {accuracy:.2%} on the MNIST test set"


def corrections_export(tmp_path, count: int = 10) -> tuple[bytes, str]:
    """An export made through the API, and the URL of the SQLite store it came from."""
    import base64

    from app import create_app
    from tests.drawing import draw, encode

    url = f"sqlite:///{tmp_path}/corrections.sqlite3"
    client = create_app({"TESTING": True, "DATABASE_URL": url, "ADMIN_TOKEN": "t"}).test_client()
    for n in range(count):
        image = base64.b64encode(encode(draw(n % 10, angle=0.02 * n))).decode()
        assert client.post("/api/corrections", json={"image": image, "label": (n + 1) % 10}).status_code == 201
    export = client.get("/api/corrections/export?format=idx", headers={"Authorization": "Bearer t"})
    return export.data, url


@pytest.mark.slow
@pytest.mark.parametrize("source", ["export", "database"])
def test_finetune_on_corrections_end_to_end(tmp_path, mnist_dir, source):
    data, url = corrections_export(tmp_path)
    export = tmp_path / "corrections.zip"
    export.write_bytes(data)
    shipped = checkpoint.DEFAULT_WEIGHTS.read_bytes()
    out = tmp_path / "finetuned.safetensors"
    result = run_train(out, mnist_dir, "--finetune", str(checkpoint.DEFAULT_WEIGHTS),
                       "--corrections", str(export) if source == "export" else url)
    assert result.returncode == 0, result.stderr
    assert "8 to learn from, 2 held out" in result.stdout
    assert "MNIST test accuracy:" in result.stdout and "before" in result.stdout and "after" in result.stdout
    assert "held-out corrections:" in result.stdout
    net, meta = checkpoint.load(out)
    assert meta["corrections"]["seen"] == 8 and meta["corrections"]["held_out"] == 2
    assert meta["finetuned_from"]["weights_sha256"] == hashlib.sha256(shipped).hexdigest()
    assert set(meta["corrections"]["before"]) == {"mnist_test_accuracy", "held_out_corrections_accuracy"}
    assert url not in json.dumps(meta)  # a database URL may hold a password
    assert checkpoint.DEFAULT_WEIGHTS.read_bytes() == shipped


def test_finetune_needs_both_a_model_and_corrections(tmp_path):
    for extra in (["--corrections", "x.npz"], ["--finetune", str(checkpoint.DEFAULT_WEIGHTS)]):
        result = subprocess.run([sys.executable, "train.py", *extra], cwd=ROOT, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2 and "go together" in result.stderr


def test_finetune_keeps_the_widths_of_the_model_it_starts_from():
    result = subprocess.run([sys.executable, "train.py", "--finetune", str(checkpoint.DEFAULT_WEIGHTS),
                             "--corrections", "x.npz", "--channels", "8", "8", "16", "16", "32"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--channels" in result.stderr and "fine-tuning keeps" in result.stderr


def test_finetune_refuses_an_unreadable_export_in_one_line(tmp_path, mnist_dir):
    bad = tmp_path / "corrections.npz"
    bad.write_bytes(b"not a zip")
    result = run_train(tmp_path / "out.safetensors", mnist_dir, "--finetune", str(checkpoint.DEFAULT_WEIGHTS),
                       "--corrections", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "not a readable corrections export" in result.stderr
