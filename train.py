"""Train digitpad's digit classifier on MNIST and write the model the app serves.

    python train.py                      # defaults: the shipped model
    python train.py --limit 2000 --epochs 1 --out /tmp/quick.safetensors

Reads top to bottom: configuration, data, model, training loop, calibration, save.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import torch
import torch.nn.functional as F
from tqdm import tqdm

from model import checkpoint, mnist
from model.augment import augment, restroke, skeletonize
from model.device import resolve_device
from model.net import MNIST_MEAN, MNIST_STD, DigitNet

# -----------------------------------------------------------------------------
# configuration

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--epochs", type=int, default=16)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--lr", type=float, default=0.1, help="peak learning rate of the one-cycle schedule")
parser.add_argument("--weight-decay", type=float, default=5e-4)
parser.add_argument("--label-smoothing", type=float, default=0.1)
parser.add_argument("--restroke", type=float, default=0.5,
                    help="share of training digits redrawn along their centre lines with a round brush")
parser.add_argument("--no-augment", action="store_true", help="train on plain MNIST (for comparison)")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
parser.add_argument("--data-dir", default=None, help=f"MNIST folder (default: $MNIST_DIR or {mnist.DEFAULT_DIR})")
parser.add_argument("--out", default=str(checkpoint.DEFAULT_WEIGHTS), help="weights file; metadata goes beside it")
parser.add_argument("--limit", type=int, default=None, help="use only the first N training and test images")
args = parser.parse_args()

try:
    device = resolve_device(args.device)
except ValueError as exc:
    parser.error(str(exc))
if args.threads:
    torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
gen = torch.Generator(device).manual_seed(args.seed)

# -----------------------------------------------------------------------------
# data: all of MNIST as uint8 tensors on the device (55 MB), batches are cut from it

try:
    train_x, train_y = mnist.load("train", args.data_dir)
    test_x, test_y = mnist.load("test", args.data_dir)
except mnist.MnistError as exc:
    sys.exit(f"error: {exc}")
if args.limit:
    train_x, train_y, test_x, test_y = train_x[:args.limit], train_y[:args.limit], test_x[:args.limit], test_y[:args.limit]
train_x, test_x = train_x.unsqueeze(1).to(device), test_x.unsqueeze(1).to(device)
train_y, test_y = train_y.long().to(device), test_y.long().to(device)
steps_per_epoch = -(-len(train_x) // args.batch_size)
# Centre lines of every training digit, so batches can be redrawn the way a canvas draws.
skeletons = skeletonize(train_x) if args.restroke and not args.no_augment else None

# -----------------------------------------------------------------------------
# model and optimiser

net = DigitNet().to(device).to(memory_format=torch.channels_last)
optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                            weight_decay=args.weight_decay)
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                               steps_per_epoch=steps_per_epoch, pct_start=0.2)


@torch.no_grad()
def evaluate() -> dict:
    net.eval()
    logits = torch.cat([net(test_x[i:i + 1000].float().div(255).contiguous(memory_format=torch.channels_last))
                        for i in range(0, len(test_x), 1000)])
    net.train()
    predicted = logits.argmax(1)
    confusion = torch.bincount(test_y * 10 + predicted, minlength=100).view(10, 10).cpu()
    return {
        "loss": F.cross_entropy(logits, test_y).item(),
        "accuracy": (predicted == test_y).float().mean().item(),
        "per_class_accuracy": (confusion.diag() / confusion.sum(1).clamp(min=1)).tolist(),
        "confusion_matrix": confusion.tolist(),
    }


# -----------------------------------------------------------------------------
# training loop

print(f"training on {len(train_x)} images, testing on {len(test_x)}, device {device}, "
      f"{torch.get_num_threads()} CPU threads")
history = []
started = time.perf_counter()
for epoch in range(1, args.epochs + 1):
    order = torch.randperm(len(train_x), device=device, generator=gen)
    epoch_loss, seen, epoch_start = 0.0, 0, time.perf_counter()
    bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{args.epochs}", leave=False, unit="batch")
    for step in bar:
        idx = order[step * args.batch_size:(step + 1) * args.batch_size]
        x = train_x[idx].float().div_(255)
        if not args.no_augment:
            if skeletons is not None:
                redraw = torch.rand(len(idx), device=device, generator=gen) < args.restroke
                x[redraw] = restroke(skeletons[idx[redraw]], gen)
            x = augment(x, gen)
        loss = F.cross_entropy(net(x.contiguous(memory_format=torch.channels_last)), train_y[idx],
                               label_smoothing=args.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        epoch_loss += loss.item() * len(idx)
        seen += len(idx)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{seen / (time.perf_counter() - epoch_start):.0f}")
    result = evaluate()
    elapsed = time.perf_counter() - started
    history.append({"epoch": epoch, "train_loss": epoch_loss / seen, "test_loss": result["loss"],
                    "test_accuracy": result["accuracy"], "elapsed_s": round(elapsed, 2),
                    "images_per_s": round(seen / (time.perf_counter() - epoch_start))})
    tqdm.write(f"epoch {epoch:2d}  train loss {epoch_loss / seen:.4f}  test loss {result['loss']:.4f}  "
               f"test accuracy {result['accuracy']:.2%}  {elapsed:6.1f} s")

# -----------------------------------------------------------------------------
# calibration: label smoothing leaves the softmax modest (a clean digit at about 90%);
# one temperature, fitted on augmented training digits, makes the confidences honest.


@torch.no_grad()
def fit_temperature(count: int = 10000) -> float:
    net.eval()
    x = augment(train_x[:count].float().div(255), torch.Generator(device).manual_seed(args.seed + 1))
    logits = torch.cat([net(x[i:i + 1000].contiguous(memory_format=torch.channels_last))
                        for i in range(0, len(x), 1000)])
    temperatures = torch.logspace(-1.5, 0.5, 81).tolist()
    losses = [F.cross_entropy(logits / t, train_y[:count]).item() for t in temperatures]
    return round(temperatures[losses.index(min(losses))], 4)


temperature = fit_temperature()
print(f"softmax temperature {temperature}")

# -----------------------------------------------------------------------------
# save: weights and metadata, each written atomically


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or None
    except OSError:
        return None


metadata = {
    "name": "digitpad-cnn",
    "version": datetime.now(timezone.utc).strftime("%Y.%m.%d.%H%M"),
    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    "input": {"size": [28, 28], "ink": "white on black", "range": [0, 1], "mean": MNIST_MEAN, "std": MNIST_STD},
    "parameters": sum(p.numel() for p in net.parameters()),
    "temperature": temperature,
    "test_accuracy": result["accuracy"],
    "test_loss": result["loss"],
    "test_images": len(test_x),
    "train_images": len(train_x),
    "per_class_accuracy": result["per_class_accuracy"],
    "confusion_matrix": result["confusion_matrix"],
    "history": history,
    "training": {
        "seconds": round(time.perf_counter() - started, 1),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "hyperparameters": {k: v for k, v in vars(args).items() if k not in ("out", "data_dir", "device", "threads")},
    },
    "data_md5": {f.name: f.md5 for split in mnist.FILES.values() for f in split},
    "torch_version": torch.__version__,
    "git_commit": git_commit(),
}
checkpoint.save(net, metadata, args.out)
print(f"test accuracy {result['accuracy']:.2%}; wrote {args.out} and {checkpoint.metadata_path(args.out)}")
