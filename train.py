"""Train digitpad's digit classifier on MNIST and write the model the app serves.

    python train.py                      # defaults: the shipped model
    python train.py --limit 2000 --epochs 1 --out /tmp/quick.safetensors
    python train.py --finetune model/digitpad.safetensors --corrections corrections.npz

Fine-tuning starts from a trained model and trains on MNIST and people's corrections (an
export file, or the store's database URL) together: MNIST replayed so that nothing is
forgotten, corrections given a fixed share of every batch. Every fifth correction is held
out, and MNIST test and held-out accuracy are reported before and after.

Reads top to bottom: configuration, data, model, training loop, calibration, save.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from model import checkpoint, mnist, provenance
from model import corrections as corrections_data
from model.augment import augment, augment_gently, restroke, skeletonize
from model.net import DIGIT_CHANNELS, MNIST_MEAN, MNIST_STD, DigitNet

# -----------------------------------------------------------------------------
# configuration

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--epochs", type=int, default=None, help="default: 16, or 2 when fine-tuning")
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--lr", type=float, default=None,
                    help="peak learning rate of the one-cycle schedule (default: 0.1, or 0.01 when fine-tuning)")
parser.add_argument("--weight-decay", type=float, default=5e-4)
parser.add_argument("--label-smoothing", type=float, default=0.1)
parser.add_argument("--restroke", type=float, default=0.5,
                    help="share of training digits redrawn along their centre lines with a round brush")
parser.add_argument("--channels", type=int, nargs=5, default=None, metavar="C",
                    help=f"widths of the five convolutions (default: {' '.join(map(str, DIGIT_CHANNELS))}; "
                    "a fine-tuned model keeps its own)")
parser.add_argument("--no-augment", action="store_true", help="train on plain MNIST (for comparison)")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
parser.add_argument("--data-dir", default=None, help=f"MNIST folder (default: $MNIST_DIR or {mnist.DEFAULT_DIR})")
parser.add_argument("--out", default=None, help="weights file; metadata goes beside it (default: the shipped "
                    "model, or NAME-finetuned.safetensors beside the model being fine-tuned)")
parser.add_argument("--limit", type=int, default=None, help="use only the first N training and test images")
parser.add_argument("--finetune", metavar="WEIGHTS", default=None,
                    help="start from this model instead of from scratch; needs --corrections")
parser.add_argument("--corrections", metavar="SOURCE", default=None,
                    help="corrections to learn from: an export (.npz or IDX .zip) or the store's database URL")
parser.add_argument("--distill", type=float, default=1.0,
                    help="weight of keeping the fine-tuned model's MNIST answers close to the original's (0: off)")
parser.add_argument("--corrections-share", type=float, default=0.125,
                    help="share of every batch drawn from the corrections (which are far fewer than MNIST)")
args = parser.parse_args()
if bool(args.finetune) != bool(args.corrections):
    parser.error("--finetune and --corrections go together: corrections teach a model that is already trained")
if args.finetune and args.channels:
    parser.error("--channels shapes a new network; fine-tuning keeps the widths of the model it starts from")
args.channels = None if args.finetune else args.channels or list(DIGIT_CHANNELS)
args.epochs = args.epochs or (2 if args.finetune else 16)
args.lr = args.lr or (0.01 if args.finetune else 0.1)
args.out = args.out or (str(Path(args.finetune).with_name(Path(args.finetune).stem + "-finetuned.safetensors"))
                        if args.finetune else str(checkpoint.DEFAULT_WEIGHTS))

try:
    device = provenance.setup(args.device, args.threads, args.seed)
except ValueError as exc:
    parser.error(str(exc))
gen = torch.Generator(device).manual_seed(args.seed)

# -----------------------------------------------------------------------------
# data: people's corrections when fine-tuning, and all of MNIST as uint8 tensors on the device
# (55 MB); batches are cut from them

# People's corrections: most teach, every fifth is held out to tell whether they were learnt.
if args.corrections:
    try:
        corrections = corrections_data.load(args.corrections)
    except (corrections_data.CorrectionsError, RuntimeError) as exc:
        sys.exit(f"error: {exc}")
    if len(corrections) == 0:
        sys.exit("error: there are no corrections to learn from in --corrections")
    taught, held_out = corrections.split()
    fix_x = torch.from_numpy(taught.images).unsqueeze(1).to(device)
    fix_y = torch.from_numpy(taught.labels).long().to(device)
    held_x = torch.from_numpy(held_out.images).unsqueeze(1).to(device)
    held_y = torch.from_numpy(held_out.labels).long().to(device)
    per_batch = max(1, round(args.batch_size * args.corrections_share)) if len(taught) else 0
    print(f"corrections: {len(taught)} to learn from, {len(held_out)} held out, {per_batch} in every batch")
else:
    per_batch = 0

try:
    train_x, train_y = mnist.load("train", args.data_dir)
    test_x, test_y = mnist.load("test", args.data_dir)
except mnist.MnistError as exc:
    sys.exit(f"error: {exc}")
if args.limit:
    train_x, train_y, test_x, test_y = train_x[:args.limit], train_y[:args.limit], test_x[:args.limit], test_y[:args.limit]
train_x, test_x = train_x.unsqueeze(1).to(device), test_x.unsqueeze(1).to(device)
train_y, test_y = train_y.long().to(device), test_y.long().to(device)
# Centre lines of every training digit, so batches can be redrawn the way a canvas draws.
skeletons = skeletonize(train_x) if args.restroke and not args.no_augment else None
mnist_per_batch = args.batch_size - per_batch
steps_per_epoch = -(-len(train_x) // mnist_per_batch)

# -----------------------------------------------------------------------------
# model and optimiser

if args.finetune:
    try:
        net, base = checkpoint.load(args.finetune, device)
    except checkpoint.ModelError as exc:
        sys.exit(f"error: {exc}")
else:
    net, base = DigitNet(tuple(args.channels)), None
net = net.to(device).to(memory_format=torch.channels_last).train()
# When fine-tuning, the model as it was, frozen: its answers on MNIST are part of what is kept.
teacher = copy.deepcopy(net).eval().requires_grad_(False) if args.finetune and args.distill else None
optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                            weight_decay=args.weight_decay)
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                               steps_per_epoch=steps_per_epoch, pct_start=0.2)


@torch.no_grad()
def logits_of(images: torch.Tensor) -> torch.Tensor:
    net.eval()
    logits = torch.cat([net(images[i:i + 1000].float().div(255).contiguous(memory_format=torch.channels_last))
                        for i in range(0, len(images), 1000)])
    net.train()
    return logits


def held_out_accuracy() -> float | None:
    if len(held_x) == 0:
        return None
    return (logits_of(held_x).argmax(1) == held_y).float().mean().item()


@torch.no_grad()
def evaluate() -> dict:
    logits = logits_of(test_x)
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
if args.finetune:
    before = {"mnist_test_accuracy": evaluate()["accuracy"], "held_out_corrections_accuracy": held_out_accuracy()}
    print(f"before: MNIST test accuracy {before['mnist_test_accuracy']:.2%}"
          + (f", held-out corrections {before['held_out_corrections_accuracy']:.2%}"
             if before["held_out_corrections_accuracy"] is not None else ""))
history = []
started = time.perf_counter()
for epoch in range(1, args.epochs + 1):
    order = torch.randperm(len(train_x), device=device, generator=gen)
    epoch_loss, seen, epoch_start = 0.0, 0, time.perf_counter()
    bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{args.epochs}", leave=False, unit="batch")
    for step in bar:
        idx = order[step * mnist_per_batch:(step + 1) * mnist_per_batch]
        x, y = train_x[idx].float().div_(255), train_y[idx]
        if not args.no_augment and skeletons is not None:
            redraw = torch.rand(len(idx), device=device, generator=gen) < args.restroke
            x[redraw] = restroke(skeletons[idx[redraw]], gen)
        if not args.no_augment:
            x = augment(x, gen)
        if per_batch:
            fixes = torch.randint(len(fix_x), (per_batch,), device=device, generator=gen)
            fix = fix_x[fixes].float().div_(255)
            x = torch.cat([x, fix if args.no_augment else augment_gently(fix, gen)])
            y = torch.cat([y, fix_y[fixes]])
        logits = net(x.contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits, y, label_smoothing=args.label_smoothing)
        if teacher is not None:  # on MNIST, keep answering as the model did before (learning without forgetting)
            with torch.no_grad():
                taught_logits = teacher(x[:len(idx)].contiguous(memory_format=torch.channels_last))
            loss = loss + args.distill * F.kl_div(F.log_softmax(logits[:len(idx)] / 2, 1),
                                                  F.log_softmax(taught_logits / 2, 1), log_target=True,
                                                  reduction="batchmean") * 4
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        epoch_loss += loss.item() * len(y)
        seen += len(y)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{seen / (time.perf_counter() - epoch_start):.0f}")
    result = evaluate()
    elapsed = time.perf_counter() - started
    history.append({"epoch": epoch, "train_loss": epoch_loss / seen, "test_loss": result["loss"],
                    "test_accuracy": result["accuracy"], "elapsed_s": round(elapsed, 2),
                    "images_per_s": round(seen / (time.perf_counter() - epoch_start))})
    held = held_out_accuracy() if args.finetune else None
    tqdm.write(f"epoch {epoch:2d}  train loss {epoch_loss / seen:.4f}  test loss {result['loss']:.4f}  "
               f"test accuracy {result['accuracy']:.2%}" + (f"  held-out corrections {held:.2%}" if held is not None
                                                              else "") + f"  {elapsed:6.1f} s")

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


metadata = {
    "name": "digitpad-cnn",
    **provenance.stamp(),
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
    **provenance.record(args, device, started),
}
if args.finetune:
    after = {"mnist_test_accuracy": result["accuracy"], "held_out_corrections_accuracy": held}
    metadata["finetuned_from"] = {"file": Path(args.finetune).name, "version": base.get("version"),
                                  "weights_sha256": base.get("weights_sha256")}
    metadata["corrections"] = {"source": "database" if "://" in args.corrections else Path(args.corrections).name,
                               "seen": len(taught), "held_out": len(held_out), "before": before, "after": after}
    metadata["train_images"] = len(train_x) + len(taught)
checkpoint.save(net, metadata, args.out)
print(f"test accuracy {result['accuracy']:.2%}; wrote {args.out} and {checkpoint.metadata_path(args.out)}")
if args.finetune:
    for name, key in (("MNIST test accuracy", "mnist_test_accuracy"),
                      ("held-out corrections", "held_out_corrections_accuracy")):
        if before[key] is not None:
            change = 100 * (after[key] - before[key])
            print(f"{name}: {before[key]:.2%} before, {after[key]:.2%} after ({change:+.2f} points)")
