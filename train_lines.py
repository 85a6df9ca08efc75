"""Train the line reader: the model that reads a whole group of digits at once (CTC), so that a
number whose digits run into each other is read as the likeliest of the ways it can be cut.

    python train_lines.py                      # defaults: the shipped model/lines.safetensors
    python train_lines.py --lines 2000 --written-digits 500 --epochs 1 --out /tmp/lines.safetensors  # quick

Reads top to bottom like train.py: configuration, data, model, training loop, save. Its data are
lines of one to eight MNIST digits, touching, overlapping, close or far apart, through the one
preprocessing path (`to_line`). Most are written out stroke by stroke as a pen or a canvas draws
them, at full size (model/pen.py: each digit's centre line redrawn with a round brush of any
width, the digits a little tilted and off the line, in some lines all much the same size, in
others up to a third bigger or smaller than the rest); the rest are MNIST's own bitmaps set side by
side (model/lines.py), half of them redrawn along their centre lines at MNIST's size. It is
tested on lines of two to six MNIST test digits made the same ways.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from app.core.classifier import LineReading
from app.core.preprocess import to_line
from model import checkpoint, mnist, pen, provenance
from model.augment import restroke, skeletonize
from model.lines import line
from model.net import LINE_CHANNELS, MNIST_MEAN, MNIST_STD, LineNet

# -----------------------------------------------------------------------------
# configuration

# The evenest hand a written line stands for: its digits' heights still differ by 10%, their
# bottoms by 0.04 heights (the most uneven is pen.MOST_SIZES, pen.MOST_BASELINES).
EVEN_SIZES, EVEN_BASELINES = 0.1, 0.04

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--lines", type=int, default=480000, help="training lines")
parser.add_argument("--written", type=float, default=0.75,
                    help="share of lines written out stroke by stroke at full size (model/pen.py)")
parser.add_argument("--written-digits", type=int, default=60000,
                    help="training digits whose centre lines the written lines are drawn from")
parser.add_argument("--sizes", type=float, default=pen.MOST_SIZES,
                    help="a written line's digits differ in height by up to +- this share (each line its own, from "
                         f"{EVEN_SIZES}), and sit up to {EVEN_BASELINES}-{pen.MOST_BASELINES} heights off its line")
parser.add_argument("--brushes", type=float, nargs=2, default=list(pen.BRUSHES), metavar=("LOW", "HIGH"),
                    help="a written line's pen width, a share of its height, from the finest to the fattest "
                         f"(default: {pen.BRUSHES[0]} {pen.BRUSHES[1]}, the benches' main sets' pens)")
parser.add_argument("--most-digits", type=int, default=8, help="training lines have 1 to this many digits")
parser.add_argument("--pen", type=float, default=0.5,
                    help="share of the other lines whose bitmaps are redrawn along their centre lines at 28 px")
parser.add_argument("--channels", type=int, nargs=4, default=list(LINE_CHANNELS), metavar="C",
                    help="widths of the four convolutions that pool a line's height away")
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
parser.add_argument("--weight-decay", type=float, default=1e-4)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
parser.add_argument("--data-dir", default=None, help=f"MNIST folder (default: $MNIST_DIR or {mnist.DEFAULT_DIR})")
parser.add_argument("--out", default=str(checkpoint.LINES_WEIGHTS), help="weights file; metadata goes beside it")
args = parser.parse_args()
if not EVEN_SIZES <= args.sizes <= pen.MOST_SIZES:
    parser.error(f"--sizes must be within {EVEN_SIZES}-{pen.MOST_SIZES}")

try:
    device = provenance.setup(args.device, args.threads, args.seed)
except ValueError as exc:
    parser.error(str(exc))

# -----------------------------------------------------------------------------
# data: lines built once, on the CPU, with the service's own preprocessing


def bitmap_lines(images: torch.Tensor, labels: torch.Tensor, count: int, seed: int, lengths: tuple[int, int],
                 desc: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """MNIST's bitmaps side by side (model/lines.py), a share of them restroked at 28 px."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(lengths[0], lengths[1] + 1, count)
    chosen = rng.choice(len(images), size=int(sizes.sum()), replace=True)
    pen = np.concatenate([  # in chunks: the centre lines of 100,000 digits at once would take 10 GB
        restroke(skeletonize(images[chosen[i:i + 10000]].unsqueeze(1)), torch.Generator().manual_seed(seed + i))[:, 0]
        .numpy() for i in range(0, len(chosen), 10000)])
    plain = images[chosen].float().div(255).numpy()
    targets = labels[chosen].numpy()
    xs, ys, at = [], [], 0
    for size in tqdm(sizes, desc=desc, leave=False, unit="line"):
        part = slice(at, at + size)
        at += size
        xs.append(line(pen[part] if rng.random() < args.pen else plain[part], rng))
        ys.append(targets[part])
    return xs, ys


def written_lines(images: torch.Tensor, labels: torch.Tensor, count: int, seed: int, lengths: tuple[int, int],
                  desc: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Numbers written stroke by stroke (model/pen.py), from the centre lines of a pool of digits,
    each drawn afresh at its own size, slant and brush every time it is used."""
    rng = random.Random(seed)
    pool_size = min(args.written_digits, len(images), count * sum(lengths) // 2)  # no more than it uses
    pool = np.random.default_rng(seed).choice(len(images), size=pool_size, replace=False)
    strokes = [pen.centre_lines(images[i].numpy()) for i in tqdm(pool, desc="centre lines", leave=False, unit="digit")]
    # A number is written one way throughout (touching the likeliest), or each neighbour its own.
    ways = [*pen.GAPS, "touching", "mixed"]
    xs, ys = [], []
    for _ in tqdm(range(count), desc=desc, leave=False, unit="line"):
        chosen = [rng.randrange(len(pool)) for _ in range(rng.randint(*lengths))]
        way = rng.choice(ways)
        gaps = [rng.choice(list(pen.GAPS)) if way == "mixed" else way for _ in chosen[1:]]
        # Some hands keep their digits one size and on one line, some do not.
        sizes, baselines = rng.uniform(EVEN_SIZES, args.sizes), rng.uniform(EVEN_BASELINES, pen.MOST_BASELINES)
        xs.append(to_line(pen.compose([strokes[i] for i in chosen], gaps, rng, sizes, baselines,
                                      brushes=tuple(args.brushes))))
        ys.append(labels[pool[chosen]].numpy())
    return xs, ys


def lines(images: torch.Tensor, labels: torch.Tensor, count: int, seed: int, lengths: tuple[int, int],
          desc: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`count` lines of `lengths` digits, the --written share of them written, the rest bitmaps."""
    written = round(count * args.written)
    xs, ys = written_lines(images, labels, written, seed, lengths, f"{desc}, written")
    more_xs, more_ys = bitmap_lines(images, labels, count - written, seed, lengths, f"{desc}, bitmaps")
    return xs + more_xs, ys + more_ys


def batch(xs: list[np.ndarray], ys: list[np.ndarray], idx) -> tuple[torch.Tensor, ...]:
    """Lines padded to the widest (to a multiple of 4), with CTC's lengths and targets (digit + 1)."""
    width = -(-max(xs[i].shape[1] for i in idx) // 4) * 4
    x = torch.zeros(len(idx), 1, xs[idx[0]].shape[0], width)
    for j, i in enumerate(idx):
        x[j, 0, :, :xs[i].shape[1]] = torch.from_numpy(xs[i])
    steps = torch.tensor([xs[i].shape[1] // 4 for i in idx])
    targets = torch.from_numpy(np.concatenate([ys[i] for i in idx]).astype(np.int64)) + 1
    lengths = torch.tensor([len(ys[i]) for i in idx])
    return x.to(device), steps, targets, lengths


def greedy(logits: torch.Tensor, steps: torch.Tensor) -> list[list[int]]:
    """Best path decoding, as the service reads a line (`LineReading.best_path`)."""
    return [[int(p.argmax()) for p, _, _ in LineReading(F.log_softmax(scores[:, :n], 0).T).best_path()]
            for scores, n in zip(logits, steps.tolist())]


try:
    train_images, train_labels = mnist.load("train", args.data_dir)
    test_images, test_labels = mnist.load("test", args.data_dir)
except mnist.MnistError as exc:
    sys.exit(f"error: {exc}")
started = time.perf_counter()
train_x, train_y = lines(train_images, train_labels, args.lines, args.seed, (1, args.most_digits),
                         "composing training lines")
test_x, test_y = lines(test_images, test_labels, max(200, min(2000, args.lines // 20)), args.seed + 1, (2, 6),
                       "composing test lines")
print(f"{len(train_x)} training lines, {len(test_x)} test lines, composed in {time.perf_counter() - started:.0f} s")
# Lines of similar width share a batch: little padding, and CTC sees each line's true length.
order = np.argsort([x.shape[1] for x in train_x], kind="stable")
batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]

# -----------------------------------------------------------------------------
# model and optimiser

net = LineNet(tuple(args.channels)).to(device)
optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.epochs * len(batches))


@torch.no_grad()
def evaluate() -> dict:
    net.eval()
    right = counted = 0
    for start in range(0, len(test_x), 200):
        idx = list(range(start, min(start + 200, len(test_x))))
        x, steps, _, _ = batch(test_x, test_y, idx)
        for i, read in zip(idx, greedy(net(x).cpu(), steps)):
            right += read == test_y[i].tolist()
            counted += len(read) == len(test_y[i])
    net.train()
    return {"line_accuracy": right / len(test_x), "count_accuracy": counted / len(test_x)}


# -----------------------------------------------------------------------------
# training loop

print(f"training on {len(train_x)} lines, device {device}, {torch.get_num_threads()} CPU threads")
history = []
rng = np.random.default_rng(args.seed)
started = time.perf_counter()
for epoch in range(1, args.epochs + 1):
    epoch_loss = 0.0
    for n in tqdm(rng.permutation(len(batches)), desc=f"epoch {epoch}/{args.epochs}", leave=False, unit="batch"):
        x, steps, targets, lengths = batch(train_x, train_y, batches[n])
        log_probs = F.log_softmax(net(x), 1).permute(2, 0, 1)  # (T, N, classes), as CTC takes them
        loss = F.ctc_loss(log_probs, targets, steps, lengths, zero_infinity=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        epoch_loss += loss.item()
    result = evaluate()
    history.append({"epoch": epoch, "train_loss": epoch_loss / len(batches), **result,
                    "elapsed_s": round(time.perf_counter() - started, 1)})
    tqdm.write(f"epoch {epoch:2d}  train loss {epoch_loss / len(batches):.4f}  test lines read right "
               f"{result['line_accuracy']:.2%}  digit count right {result['count_accuracy']:.2%}")

# -----------------------------------------------------------------------------
# save: weights and metadata, each written atomically

metadata = {
    "name": "digitpad-lines",
    **provenance.stamp(),
    "input": {"height": 28, "ink_height": 24, "ink": "white on black", "range": [0, 1],
              "mean": MNIST_MEAN, "std": MNIST_STD},
    "output": "per 4 px of width: CTC blank, then the digits 0-9",
    "classes": ["blank"] + [str(d) for d in range(10)],
    "parameters": sum(p.numel() for p in net.parameters()),
    "test": result,
    "train_lines": len(train_x),
    "test_lines": len(test_x),
    "history": history,
    **provenance.record(args, device, started),
}
checkpoint.save(net, metadata, args.out)
print(f"test lines read right {result['line_accuracy']:.2%}; wrote {args.out} and {checkpoint.metadata_path(args.out)}")
