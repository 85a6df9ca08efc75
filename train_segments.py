"""Train the segment reader: the model that tells one whole digit from a fragment of one or from
two digits stuck together, so that numbers whose digits touch are cut in the right places.

    python train_segments.py                      # defaults: the shipped model/segments.safetensors
    python train_segments.py --lines 500 --epochs 1 --out /tmp/segments.safetensors   # a quick check

Reads top to bottom like train.py: configuration, data, model, training loop, save. Its data are
lines of MNIST digits cut by the service's own segmentation (model/lines.py); its eleventh class
is "not one whole digit".
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from model import checkpoint, mnist, provenance
from model.augment import augment, restroke, skeletonize
from model.lines import JUNK, examples
from model.net import MNIST_MEAN, MNIST_STD, SEGMENT_CHANNELS, DigitNet

# -----------------------------------------------------------------------------
# configuration

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--lines", type=int, default=4000, help="lines of digits to cut for training")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--lr", type=float, default=0.05, help="peak learning rate of the one-cycle schedule")
parser.add_argument("--weight-decay", type=float, default=5e-4)
parser.add_argument("--channels", type=int, nargs=5, default=list(SEGMENT_CHANNELS), metavar="C",
                    help="widths of the five convolutions (each candidate piece of a number goes through them)")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
parser.add_argument("--data-dir", default=None, help=f"MNIST folder (default: $MNIST_DIR or {mnist.DEFAULT_DIR})")
parser.add_argument("--out", default=str(checkpoint.SEGMENTS_WEIGHTS),
                    help="weights file; metadata goes beside it")
args = parser.parse_args()

try:
    device = provenance.setup(args.device, args.threads, args.seed)
except ValueError as exc:
    parser.error(str(exc))
gen = torch.Generator(device).manual_seed(args.seed)

# -----------------------------------------------------------------------------
# data: pieces cut from lines of digits, half of them redrawn along their centre lines with a
# pen (as the page draws), plus whole digits; built once, on the CPU, with the service's code


def pieces(images: torch.Tensor, labels: torch.Tensor, count: int, seed: int, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    pen = restroke(skeletonize(images.unsqueeze(1)), torch.Generator().manual_seed(seed))[:, 0].numpy()
    plain = images.float().div(255).numpy()
    fields, targets = [], []
    for _ in tqdm(range(count), desc=desc, leave=False, unit="line"):
        chosen = rng.choice(len(images), size=int(rng.integers(2, 4)), replace=False)
        source = pen if rng.random() < 0.5 else plain
        f, t = examples(source[chosen], labels[chosen].numpy(), rng)
        fields += f
        targets += t
    targets = np.array(targets)
    # As many whole digits as junk: the whole digits the lines yielded, topped up with single digits.
    junk = int((targets == JUNK).sum())
    extra = rng.choice(len(images), size=max(0, junk - int((targets != JUNK).sum())), replace=True)
    x = np.concatenate([np.stack(fields), np.where(rng.random(len(extra))[:, None, None] < 0.5, pen[extra], plain[extra])])
    y = np.concatenate([targets, labels[extra].numpy()])
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(1), torch.from_numpy(y).long()


try:
    train_images, train_labels = mnist.load("train", args.data_dir)
    test_images, test_labels = mnist.load("test", args.data_dir)
except mnist.MnistError as exc:
    sys.exit(f"error: {exc}")
started = time.perf_counter()
train_x, train_y = pieces(train_images, train_labels, args.lines, args.seed, "cutting training lines")
test_x, test_y = pieces(test_images, test_labels, max(200, args.lines // 8), args.seed + 1, "cutting test lines")
print(f"{len(train_x)} training pieces ({(train_y == JUNK).float().mean():.0%} junk), {len(test_x)} test pieces, "
      f"cut in {time.perf_counter() - started:.0f} s")
train_x, train_y, test_x, test_y = train_x.to(device), train_y.to(device), test_x.to(device), test_y.to(device)
steps_per_epoch = -(-len(train_x) // args.batch_size)

# -----------------------------------------------------------------------------
# model and optimiser

net = DigitNet(tuple(args.channels), classes=JUNK + 1).to(device).to(memory_format=torch.channels_last)
optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                               steps_per_epoch=steps_per_epoch, pct_start=0.2)


@torch.no_grad()
def evaluate() -> dict:
    net.eval()
    logits = torch.cat([net(test_x[i:i + 1000].contiguous(memory_format=torch.channels_last))
                        for i in range(0, len(test_x), 1000)])
    net.train()
    said_junk, is_junk = logits.argmax(1) == JUNK, test_y == JUNK
    return {
        "loss": F.cross_entropy(logits, test_y).item(),
        "accuracy": (logits.argmax(1) == test_y).float().mean().item(),
        "junk_recall": (said_junk & is_junk).sum().item() / max(1, is_junk.sum().item()),
        "whole_digit_recall": (~said_junk & ~is_junk).sum().item() / max(1, (~is_junk).sum().item()),
    }


# -----------------------------------------------------------------------------
# training loop

print(f"training on {len(train_x)} pieces, device {device}, {torch.get_num_threads()} CPU threads")
history = []
started = time.perf_counter()
for epoch in range(1, args.epochs + 1):
    order = torch.randperm(len(train_x), device=device, generator=gen)
    epoch_loss, seen = 0.0, 0
    for step in tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{args.epochs}", leave=False, unit="batch"):
        idx = order[step * args.batch_size:(step + 1) * args.batch_size]
        x = augment(train_x[idx], gen)
        loss = F.cross_entropy(net(x.contiguous(memory_format=torch.channels_last)), train_y[idx], label_smoothing=0.05)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        epoch_loss += loss.item() * len(idx)
        seen += len(idx)
    result = evaluate()
    history.append({"epoch": epoch, "train_loss": epoch_loss / seen, **result,
                    "elapsed_s": round(time.perf_counter() - started, 1)})
    tqdm.write(f"epoch {epoch:2d}  train loss {epoch_loss / seen:.4f}  test accuracy {result['accuracy']:.2%}  "
               f"junk recall {result['junk_recall']:.2%}  whole-digit recall {result['whole_digit_recall']:.2%}")

# -----------------------------------------------------------------------------
# save: weights and metadata, each written atomically

metadata = {
    "name": "digitpad-segments",
    **provenance.stamp(),
    "input": {"size": [28, 28], "ink": "white on black", "range": [0, 1], "mean": MNIST_MEAN, "std": MNIST_STD},
    "classes": [str(d) for d in range(10)] + ["not one whole digit"],
    "parameters": sum(p.numel() for p in net.parameters()),
    "test": result,
    "train_pieces": len(train_x),
    "test_pieces": len(test_x),
    "history": history,
    **provenance.record(args, device, started),
}
checkpoint.save(net, metadata, args.out)
print(f"junk recall {result['junk_recall']:.2%}, whole-digit recall {result['whole_digit_recall']:.2%}; "
      f"wrote {args.out} and {checkpoint.metadata_path(args.out)}")
