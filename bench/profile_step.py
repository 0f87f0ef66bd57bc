"""Where one training step of deltaprop spends its time, stage by stage.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/profile_step.py --batch 128 --optimizer sgd,adam

With several optimizers, each gets its table and the Adam step is given as a multiple of the SGD step.
Every table ends with the step's non-product time (the whole step minus its matrix products run back
to back) and, with ``--split`` (the default), the whole step as ``Trainer(threads=2)`` runs it: the
batch in two halves on two threads, one BLAS thread each.

Each stage of a step is timed alone on the engine's own arrays, many times over (the fastest of
five blocks is reported: the stage's cost without interference), and then the whole step as the
trainer runs it (gather, train_step, accuracy count). What the stages do not explain is Python and
NumPy call overhead. Random data of Fashion-MNIST's shape is enough: the arithmetic does not
depend on the values.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import deltaprop as dp
from deltaprop import fast
from deltaprop.optim import SGD
from deltaprop.parallel import SplitStep


def best_of(f, calls: int, blocks: int = 5) -> float:
    """Microseconds per call of f(i), the fastest of ``blocks`` blocks of ``calls`` calls."""
    for i in range(10):
        f(i)
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        for i in range(calls):
            f(i)
        times.append((time.perf_counter() - t0) / calls)
    return min(times) * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="784,256,128,10")
    ap.add_argument("--hidden", default="relu")
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--optimizer", default="sgd,adam", help="sgd, adam or both (comma-separated)")
    ap.add_argument("--no-split", action="store_true", help="skip the two-thread step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args(argv)
    threadpool_limits(args.threads)
    steps = {}
    for name in args.optimizer.split(","):
        steps[name] = profile(args, name.strip())
        print()
    if "sgd" in steps and "adam" in steps:
        print(f"Adam step ÷ SGD step: {steps['adam'][0] / steps['sgd'][0]:.2f} on one thread of Python "
              f"({steps['adam'][0]:.1f} vs {steps['sgd'][0]:.1f} µs)"
              + (f", {steps['adam'][1] / steps['sgd'][1]:.2f} split over two threads "
                 f"({steps['adam'][1]:.1f} vs {steps['sgd'][1]:.1f} µs)" if steps["sgd"][1] else ""))


def profile(args, optimizer):
    """Print the stage table of one optimizer's step; returns (whole step µs, two-thread step µs or None)."""
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    X = rng.random((args.rows, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], args.rows)
    net = dp.Network.from_sizes(sizes, hidden=args.hidden, output="softmax", seed=0)
    opt = dp.make_optimizer(optimizer, lr=0.01 if optimizer == "sgd" else 1e-3)
    if optimizer != "sgd":  # the compiled update loop, as a long training loads it (Numba installed)
        from deltaprop import kernels

        kernels.load(optimizer, "float32")
        print(f"Update: {kernels.status()}")
    tr = dp.Trainer(net, X, y, epochs=1, batch_size=args.batch, optimizer=opt, seed=0)
    bs = tr.batch_size
    order = rng.permutation(args.rows)
    batches = [order[i:i + bs] for i in range(0, args.rows - bs + 1, bs)]
    nb = len(batches)
    idx0 = batches[0]
    Xb, Yb = tr._gather(idx0)
    tr.train_step(Xb, Yb)
    L = net.layers
    grads = net._grads
    scale = opt.lr if opt.folds_lr else 1.0
    m = Xb.shape[0]
    stages = {}
    C = args.calls

    stages["gather X, Y rows"] = best_of(lambda i: tr._gather(batches[i % nb]), C)
    fwd_mm = fwd_ew = bwd_mm = bwd_ew = 0.0
    # Plain SGD's step inside the backward pass (Network.backward(sgd_step=True)): W ← W − δᵀA_prev is
    # the dW product itself, timed on a copy of W; only b's update is left to the update stage.
    sgd_step = opt.folds_lr and type(opt) is SGD
    A = Xb
    for layer in L:
        Z, Aout = layer._buffers_for(m)[:2]
        if Z.flags.f_contiguous and not Z.flags.c_contiguous:  # a narrow layer: Zᵀ = W A_prevᵀ, as the engine
            fwd_mm += best_of(lambda i, A=A, layer=layer, Z=Z: np.matmul(layer.W, A.T, out=Z.T), C)
        else:
            fwd_mm += best_of(lambda i, A=A, layer=layer, Z=Z: np.matmul(A, layer.W.T, out=Z), C)
        fwd_ew += best_of(lambda i, layer=layer, Z=Z: np.add(Z, layer.b, out=Z), C)
        fwd_ew += best_of(lambda i, layer=layer, Z=Z, Aout=Aout: layer.activation.forward(Z, out=Aout), C)
        A = Aout
    net.forward(Xb, cache=True, check=False)
    stages["forward: matrix products"] = fwd_mm
    stages["forward: bias, activations, softmax"] = fwd_ew
    stages["cost J of the batch"] = best_of(lambda i: net.cached_cost(Yb, 0.0), C)
    out = L[-1]
    delta_out = np.empty_like(out.A)
    stages["output error δ_L = (A − Y)/m"] = best_of(lambda i: net.loss.delta(out.A, Yb, scale / m, out=delta_out), C)
    net.backward(Yb, 0.0, scale=scale)
    for i, layer in enumerate(L):
        dW, db = grads[i]
        if sgd_step:
            W_copy = layer.W.copy()
            bwd_mm += best_of(lambda _, layer=layer, W=W_copy, dW=dW: fast.sub_product(W, layer.delta, layer.A_prev,
                                                                                    scratch=dW), C)
        else:
            bwd_mm += best_of(lambda _, layer=layer, dW=dW: np.matmul(layer.delta.T, layer.A_prev, out=dW), C)
        bwd_ew += best_of(lambda _, layer=layer, db=db: np.add.reduce(layer.delta, axis=0, out=db), C)
        if i > 0:
            dA = layer._buffers_for(m)[2]
            bwd_mm += best_of(lambda _, layer=layer, dA=dA: np.matmul(layer.delta, layer.W, out=dA), C)
            below = L[i - 1]
            tmp = np.empty_like(dA)
            bwd_ew += best_of(lambda _, below=below, dA=dA, tmp=tmp: below.activation.backward(
                np.copyto(tmp, dA) or tmp, below.Z, below.A), C)
            bwd_ew -= best_of(lambda _, dA=dA, tmp=tmp: np.copyto(tmp, dA), C)  # the copy is not the engine's
    stages["backward: matrix products (dW, dA)" + (", W's update in dW's" if sgd_step else "")] = bwd_mm
    stages["backward: db, activation derivatives"] = bwd_ew
    flat_params = [net.flat_params()]
    flat_grads = [net.flat_grads()]
    if sgd_step:
        bs_ = [layer.b.copy() for layer in L]
        stages["update b −= α db (W's is in its product)"] = best_of(
            lambda i: [np.subtract(b, db, out=b) for b, (_, db) in zip(bs_, grads)], C)
    elif opt.folds_lr:
        stages["update θ −= αg"] = best_of(lambda i: opt.apply(flat_params, flat_grads), C)
    else:
        stages["update (Adam)"] = best_of(lambda i: opt.step(flat_params, flat_grads), C)
    stages["accuracy count"] = best_of(lambda i: tr._correct(idx0, Yb), C)

    def whole(i):
        idx = batches[i % nb]
        xb, yb = tr._gather(idx)
        tr.train_step(xb, yb, keep_grads=False)  # as the trainer's loop steps (all but an epoch's last batch)
        tr._correct(idx, yb)

    total = best_of(whole, C)
    compiled_total = None  # the whole step by the compiled pieces, as a long run takes it (Numba installed)
    from deltaprop import kernels

    if kernels.load_step("float32") and net.compiled_step_fits():
        tr._compiled = True
        compiled_total = best_of(whole, C)
        tr._compiled = False

    def products(i):  # the step's matrix products alone, back to back, on the engine's buffers
        for layer in L:
            Z = layer._buffers_for(m)[0]
            if Z.flags.f_contiguous and not Z.flags.c_contiguous:
                np.matmul(layer.W, layer.A_prev.T, out=Z.T)
            else:
                np.matmul(layer.A_prev, layer.W.T, out=Z)
        for j in range(len(L) - 1, -1, -1):
            layer = L[j]
            np.matmul(layer.delta.T, layer.A_prev, out=grads[j][0])
            if j > 0:
                np.matmul(layer.delta, layer.W, out=layer._buffers_for(m)[2])

    in_step = best_of(products, C)
    parts = sum(stages.values())
    stages["Python and call overhead (the rest)"] = total - parts
    split_total = None
    if not args.no_split and SplitStep.usable(net, m):
        from threadpoolctl import threadpool_limits as limits

        split = tr._split = opt.halves = SplitStep(net)
        with limits(1, user_api="blas"), split:
            split_total = best_of(whole, C)
        tr._split = opt.halves = None
    flops = sum(2 * m * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    flops = 2 * flops + sum(2 * m * a * b for a, b in zip(sizes[1:-1], sizes[2:]))
    print(f"deltaprop step, {'-'.join(map(str, sizes))} {args.hidden}, batch {m}, {optimizer}, "
          f"{args.threads} BLAS threads: {total:.1f} µs a step "
          f"({flops / total / 1e3:.0f} GFLOP/s over the step's {flops / 1e6:.1f} MFLOP of products)")
    print(f"The products timed one by one: {fwd_mm + bwd_mm:.1f} µs; back to back in the step's order: {in_step:.1f} µs.")
    print()
    print("| stage | µs | share |")
    print("| --- | --- | --- |")
    for name, us in stages.items():
        print(f"| {name} | {us:.1f} | {us / total:.0%} |")
    print(f"| **whole step, as trained** | **{total:.1f}** | 100% |")
    print()
    non_product = total - in_step
    print(f"Non-product time of the step (whole step − its products back to back): {non_product:.1f} µs "
          f"({non_product / total:.0%}); the non-product stages timed alone: {parts - fwd_mm - bwd_mm:.1f} µs.")
    if compiled_total is not None:
        print(f"Whole step by the compiled pieces (Network.compiled_step, the same bits): {compiled_total:.1f} µs "
              f"({compiled_total / total:.2f} × the step above); its non-product time {compiled_total - in_step:.1f} µs.")
    if split_total is not None:
        print(f"Whole step split over two threads (Trainer(threads=2), one BLAS thread each): {split_total:.1f} µs "
              f"({split_total / total:.2f} × the step above).")
    return total, split_total


if __name__ == "__main__":
    main()
