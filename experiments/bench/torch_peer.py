#!/usr/bin/env python3
"""PyTorch peer for the tms benchmarks.

The Toy Models of Superposition training recipe written the way the paper's
companion notebook writes it: every parameter carries a leading instance axis,
the forward pass is two einsums over that axis, a fresh batch is drawn every
step, and torch.optim.AdamW updates everything. Nothing here is tuned for speed
beyond what a researcher would do (optionally torch.compile); that is the point
of the comparison.

Shapes (I = instances, B = batch, n = features, m = hidden):
    W  (I, m, n)   column i of W[k] is feature i's direction (same layout as tms)
    W2 (I, n, m)   untied decoder only
    b  (I, n)      output bias
    x  (B, I, n)   feature = U[0,1) with probability density[k], else 0
    h   = einsum(W, x)          (B, I, m)
    out = relu(einsum(Wd, h) + b), Wd = W^T (tied) or W2 (untied)
Loss per instance: mean over batch and features of I_i (x_i - out_i)^2
(the notebook's normalisation, "loss_mean_features"); summed over instances
before backward, as the notebook does.
Init: Xavier-normal per instance, std sqrt(2 / (n + m)) (not the notebook's 3-D
init, whose std depends on the instance count); bias zero.

Examples:
    python3 torch_peer.py --device cpu --instances 10 --n 5 --m 2 --steps 200 \
        --densities 1,0.5 ... --importance-decay 0.9 --json
    python3 torch_peer.py --device cuda --instances 1000 --compile --json

The timed region is the whole training loop (parameter and optimiser set-up
excluded, first-step compilation included); on CUDA the clock stops after a
synchronise. The reported loss comes from a separate evaluation on fresh
batches after the clock has stopped.
"""

import argparse
import json
import math
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--instances", type=int, default=10)
    p.add_argument("--n", type=int, default=5, help="features (default 5)")
    p.add_argument("--m", type=int, default=2, help="hidden dimensions (default 2)")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--decoder", choices=["tied", "untied"], default="tied")
    p.add_argument("--density", type=float, default=None,
                   help="feature density 1-S for every instance (default 1.0)")
    p.add_argument("--densities", type=str, default=None,
                   help="comma-separated densities, one per instance (overrides --density)")
    p.add_argument("--importance-decay", type=float, default=1.0,
                   help="importance I_i = r^i (default 1.0: all ones)")
    p.add_argument("--importances", type=str, default=None,
                   help="per-instance importance of feature 1 relative to feature 0, comma-separated "
                        "(the phase diagrams of bench_fused.py; needs --n 2; overrides --importance-decay)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="torch.set_num_threads (default: all cores, %d here)" % os.cpu_count())
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the batch+forward+loss function (torch >= 2.0)")
    p.add_argument("--log-every", type=int, default=0,
                   help="print the mean loss every K steps to stderr (synchronises; off by default)")
    p.add_argument("--eval-batches", type=int, default=10,
                   help="fresh batches for the final, untimed loss evaluation (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON line and nothing else on stdout")
    return p.parse_args(argv)


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


class Model(torch.nn.Module):
    def __init__(self, instances, n, m, decoder):
        super().__init__()
        self.decoder = decoder
        self.W = torch.nn.Parameter(torch.empty(instances, m, n))   # (I, m, n)
        for k in range(instances):
            torch.nn.init.xavier_normal_(self.W.data[k])             # std sqrt(2/(n+m))
        if decoder == "untied":
            self.W2 = torch.nn.Parameter(torch.empty(instances, n, m))  # (I, n, m)
            for k in range(instances):
                torch.nn.init.xavier_normal_(self.W2.data[k])
        self.b = torch.nn.Parameter(torch.zeros(instances, n))       # (I, n)

    def forward(self, x):                                            # x (B, I, n)
        h = torch.einsum("imn,bin->bim", self.W, x)                  # (B, I, m)
        if self.decoder == "tied":
            out = torch.einsum("imn,bim->bin", self.W, h)            # W^T h
        else:
            out = torch.einsum("inm,bim->bin", self.W2, h)
        return F.relu(out + self.b)


def generate_batch(batch, density, n):
    # density (I, 1): each feature present independently with its instance's density
    instances = density.shape[0]
    feat = torch.rand((batch, instances, n), device=density.device)
    mask = torch.rand((batch, instances, n), device=density.device) <= density
    return torch.where(mask, feat, torch.zeros((), device=density.device))


def batch_loss(model, density, importance, batch, n):
    """Per-instance loss (I,), mean over batch and features, and their sum."""
    x = generate_batch(batch, density, n)
    out = model(x)
    error = importance * (x - out) ** 2                             # (B, I, n)
    per_instance = error.mean(dim=(0, 2))                           # (I,)
    return per_instance.sum(), per_instance


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    if args.threads and args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_peer: --device cuda but torch.cuda.is_available() is False "
                 "(torch %s)" % torch.__version__)
    device = torch.device(args.device)

    if args.densities is not None:
        densities = [float(s) for s in args.densities.split(",") if s.strip()]
        if len(densities) != args.instances:
            sys.exit("torch_peer: --densities has %d values but --instances is %d"
                     % (len(densities), args.instances))
    else:
        densities = [1.0 if args.density is None else args.density] * args.instances
    density = torch.tensor(densities, dtype=torch.float32, device=device)[:, None]        # (I, 1)
    importance = (args.importance_decay ** torch.arange(args.n, dtype=torch.float32)).to(device)  # (n,)
    if args.importances is not None:
        ratios = [float(s) for s in args.importances.split(",") if s.strip()]
        if len(ratios) != args.instances or args.n != 2:
            sys.exit("torch_peer: --importances needs one value per instance and --n 2")
        importance = torch.tensor([[1.0, r] for r in ratios], dtype=torch.float32, device=device)  # (I, n)

    model = Model(args.instances, args.n, args.m, args.decoder).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999),
                            eps=1e-8, weight_decay=args.weight_decay)

    loss_fn = batch_loss
    if args.compile:
        if not hasattr(torch, "compile"):
            sys.exit("torch_peer: --compile needs torch >= 2.0 (torch.compile); this is torch %s. "
                     "Run without --compile." % torch.__version__)
        loss_fn = torch.compile(batch_loss)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    sync()
    t0 = time.perf_counter()
    first_step_seconds = None
    for step in range(args.steps):
        opt.zero_grad(set_to_none=True)
        loss, per_instance = loss_fn(model, density, importance, args.batch, args.n)
        loss.backward()
        opt.step()
        if step == 0:
            sync()
            first_step_seconds = time.perf_counter() - t0
        if args.log_every and (step % args.log_every == 0 or step == args.steps - 1):
            print("step %6d  loss_mean_features (mean over instances) %.6f"
                  % (step, per_instance.mean().item()), file=sys.stderr)
    sync()
    wall = time.perf_counter() - t0

    last_step_loss = per_instance.detach().mean().item() if args.steps > 0 else float("nan")
    with torch.no_grad():
        eval_loss = torch.zeros(args.instances, device=device)
        for _ in range(args.eval_batches):
            eval_loss += batch_loss(model, density, importance, args.batch, args.n)[1]
        eval_loss /= max(args.eval_batches, 1)
    eval_loss = eval_loss.cpu().tolist()

    result = {
        "impl": "torch_peer" + ("+compile" if args.compile else ""),
        "torch_version": torch.__version__,
        "device": args.device,
        "device_name": device_name(device),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "instances": args.instances, "n_features": args.n, "n_hidden": args.m,
        "decoder": args.decoder, "batch_size": args.batch, "steps": args.steps,
        "importance_decay": args.importance_decay,
        "densities": densities if len(set(densities)) > 1 else densities[0],
        "wall_seconds": wall,
        "first_step_seconds": first_step_seconds,
        "instance_steps_per_second": args.instances * args.steps / wall if wall > 0 else None,
        # notebook normalisation: mean over batch and features, then mean over instances
        "final_loss_mean_features": sum(eval_loss) / len(eval_loss),
        "last_step_loss_mean_features": last_step_loss,
        "loss_mean_features_per_instance": eval_loss,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print("torch %s on %s (%s): %d instances x %d steps, n=%d m=%d %s, batch %d"
              % (torch.__version__, args.device, result["device_name"], args.instances,
                 args.steps, args.n, args.m, args.decoder, args.batch))
        print("wall %.3f s (first step %.3f s), %.0f instance-steps/s"
              % (wall, first_step_seconds or 0.0, result["instance_steps_per_second"] or 0.0))
        print("final loss_mean_features, mean over instances: %.6f (last step %.6f)"
              % (result["final_loss_mean_features"], last_step_loss))
        print("per instance: " + " ".join("%.5f" % v for v in eval_loss))


if __name__ == "__main__":
    main()
