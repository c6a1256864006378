#!/usr/bin/env python3
"""JAX peer for the tms benchmarks (issue 12: the fused path's benchmark, bench_fused.sh).

The Toy Models of Superposition recipe written the way JAX users write many small models:
one instance's training step is a pure function, `jax.vmap` maps it over the instances,
`jax.lax.scan` runs a chunk of steps inside one compiled program, and `jax.jit` compiles
the whole chunk (the reference recipe of issue 11). The same problem as torch_peer.py:

    W  (m, n) per instance   column i is feature i's direction (same layout as tms)
    W2 (n, m) per instance   untied decoder only
    b  (n)    per instance   output bias
    x  (B, n)                feature = U[0,1) with probability density, else 0 (fresh each step)
    h  = x W^T               (B, m)
    out = relu(h Wd^T + b),  Wd = W^T (tied) or W2 (untied)
    loss = mean over batch and features of I_i (x_i - out_i)^2   ("loss_mean_features")
AdamW with torch.optim.AdamW's semantics, written out (p -= lr wd p; m, v; bias-corrected
step), lr 1e-3, betas 0.9 / 0.999, eps 1e-8, weight decay 0.01; Xavier-normal init per
instance (std sqrt(2 / (n + m))), bias zero. fp32 throughout (matmul precision "highest",
so no TF32 on the GPU: the same arithmetic as tms).

Timing: the chunk function is compiled ahead of the clock (jit(...).lower(...).compile();
its time is reported as compile_seconds); the clock then runs every chunk of the training
and stops after block_until_ready. The reported loss is a separate evaluation on fresh
batches after the clock has stopped.

    python3 jax_peer.py --device cpu --instances 4 --steps 50 --batch 64 --json
    python3 jax_peer.py --device gpu --instances 1000 --n 5 --m 2 --steps 10000 --json
"""

import argparse
import json
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--instances", type=int, default=10)
    p.add_argument("--n", type=int, default=5, help="features (default 5)")
    p.add_argument("--m", type=int, default=2, help="hidden dimensions (default 2)")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--chunk", type=int, default=1000, help="steps per compiled lax.scan (default 1000)")
    p.add_argument("--decoder", choices=["tied", "untied"], default="tied")
    p.add_argument("--density", type=float, default=None, help="feature density for every instance (default 1)")
    p.add_argument("--densities", type=str, default=None, help="comma-separated, one per instance")
    p.add_argument("--importances", type=str, default=None,
                   help="per-instance importance of feature 1 relative to feature 0, comma-separated "
                        "(the phase diagrams; n must be 2); default: --importance-decay")
    p.add_argument("--importance-decay", type=float, default=1.0, help="importance I_i = r^i (default 1)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-batches", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print one JSON line and nothing else on stdout")
    args = p.parse_args(argv)
    for name in ("instances", "n", "m", "batch", "steps", "chunk"):
        if getattr(args, name) < 1:
            p.error("--%s must be at least 1" % name)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.device == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as e:
        sys.exit("jax_peer: JAX is not importable (%s); install jax (jax[cuda12] for the GPU) to run this peer" % e)
    jax.config.update("jax_default_matmul_precision", "highest")
    try:
        device = jax.devices(args.device)[0]
    except RuntimeError as e:
        sys.exit("jax_peer: no JAX %s device (%s)" % (args.device, e))

    I, n, m, B = args.instances, args.n, args.m, args.batch
    if args.densities is not None:
        densities = [float(s) for s in args.densities.split(",") if s.strip()]
        if len(densities) != I:
            sys.exit("jax_peer: --densities has %d values but --instances is %d" % (len(densities), I))
    else:
        densities = [1.0 if args.density is None else args.density] * I
    if args.importances is not None:
        ratios = [float(s) for s in args.importances.split(",") if s.strip()]
        if len(ratios) != I or n != 2:
            sys.exit("jax_peer: --importances needs one value per instance and --n 2")
        importance = [[1.0, r] for r in ratios]
    else:
        importance = [[args.importance_decay ** i for i in range(n)]] * I
    tied = args.decoder == "tied"
    lr, wd, b1, b2, eps = args.lr, args.weight_decay, 0.9, 0.999, 1e-8

    def init(key):
        kw, kw2 = jax.random.split(key)
        std = (2.0 / (n + m)) ** 0.5
        p = {"W": std * jax.random.normal(kw, (m, n), jnp.float32), "b": jnp.zeros((n,), jnp.float32)}
        if not tied:
            p["W2"] = std * jax.random.normal(kw2, (n, m), jnp.float32)
        return p

    def sample(key, density):
        ku, kv = jax.random.split(key)
        feat = jax.random.uniform(ku, (B, n), jnp.float32)
        keep = jax.random.uniform(kv, (B, n), jnp.float32) <= density
        return jnp.where(keep, feat, 0.0)

    def loss_fn(p, x, imp):
        h = x @ p["W"].T                                    # (B, m)
        y = h @ p["W"] if tied else h @ p["W2"].T           # (B, n)
        out = jax.nn.relu(y + p["b"])
        return jnp.mean(imp * (x - out) ** 2)

    def step(carry, key):
        p, mom, vel, t, density, imp = carry
        x = sample(key, density)
        loss, g = jax.value_and_grad(loss_fn)(p, x, imp)
        t = t + 1
        c1, c2 = 1.0 - b1 ** t, 1.0 - b2 ** t

        def upd(pp, gg, mm, vv):
            pp = pp - lr * wd * pp
            mm = b1 * mm + (1.0 - b1) * gg
            vv = b2 * vv + (1.0 - b2) * gg * gg
            return pp - lr * (mm / c1) / (jnp.sqrt(vv / c2) + eps), mm, vv

        out = {k: upd(p[k], g[k], mom[k], vel[k]) for k in p}
        p = {k: out[k][0] for k in p}
        mom = {k: out[k][1] for k in p}
        vel = {k: out[k][2] for k in p}
        return (p, mom, vel, t, density, imp), loss

    def chunk_one(state, key, chunk_index, steps):
        keys = jax.random.split(jax.random.fold_in(key, chunk_index), steps)
        state, losses = jax.lax.scan(step, state, keys)
        return state, losses[-1]

    def make_chunk(steps):
        return jax.jit(jax.vmap(lambda s, k, c: chunk_one(s, k, c, steps), in_axes=(0, 0, None)))

    with jax.default_device(device):
        root = jax.random.PRNGKey(args.seed)
        kinit, ktrain, keval = jax.random.split(root, 3)
        inst_keys = jax.random.split(ktrain, I)
        params = jax.vmap(init)(jax.random.split(kinit, I))
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        state = (params, zeros, zeros, jnp.zeros((I,), jnp.float32), jnp.asarray(densities, jnp.float32),
                 jnp.asarray(importance, jnp.float32))
        sizes = [args.chunk] * (args.steps // args.chunk) + ([args.steps % args.chunk] if args.steps % args.chunk else [])
        t0 = time.perf_counter()
        compiled = {}
        for s in sorted(set(sizes)):
            compiled[s] = make_chunk(s).lower(state, inst_keys, 0).compile()
        compile_seconds = time.perf_counter() - t0

        t0 = time.perf_counter()
        last = None
        for c, s in enumerate(sizes):
            state, last = compiled[s](state, inst_keys, c)
        jax.block_until_ready(state)
        wall = time.perf_counter() - t0

        params = state[0]
        eval_keys = jax.random.split(keval, args.eval_batches)
        per_batch = jax.vmap(lambda k: jax.vmap(lambda p, kk, d, im: loss_fn(p, sample(kk, d), im))(
            params, jax.random.split(k, I), state[4], state[5]))(eval_keys)   # (batches, I)
        eval_loss = [float(v) for v in per_batch.mean(axis=0)]

    result = {
        "impl": "jax_peer",
        "jax_version": jax.__version__,
        "device": args.device,
        "device_name": str(device.device_kind),
        "instances": I, "n_features": n, "n_hidden": m, "decoder": args.decoder, "batch_size": B,
        "steps": args.steps, "chunk": args.chunk,
        "wall_seconds": wall,
        "compile_seconds": compile_seconds,
        "instance_steps_per_second": I * args.steps / wall if wall > 0 else None,
        "final_loss_mean_features": sum(eval_loss) / len(eval_loss),
        "last_step_loss_mean_features": float(jnp.mean(last)) if last is not None else float("nan"),
        "loss_mean_features_per_instance": eval_loss,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print("jax %s on %s (%s): %d instances x %d steps, n=%d m=%d %s, batch %d"
              % (jax.__version__, args.device, result["device_name"], I, args.steps, n, m, args.decoder, B))
        print("wall %.3f s (+ compile %.3f s), %.0f instance-steps/s"
              % (wall, compile_seconds, result["instance_steps_per_second"] or 0.0))
        print("final loss_mean_features, mean over instances: %.6f" % result["final_loss_mean_features"])


if __name__ == "__main__":
    main()
