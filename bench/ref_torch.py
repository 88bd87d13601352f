"""PyTorch eager on CPU: the ordinary training loop (zero_grad, forward, backward, Adam step), shuffling
every epoch, the last batch short, loss and accuracy accumulated without a host sync per step."""

from __future__ import annotations

import math
import os
import time


def model(w):
    import torch.nn as nn

    out = max(w.classes, 1)
    if w.kind in ("xor", "iris", "mlp"):
        dims = [math.prod(w.input_shape), *w.hidden, out]
        act = nn.Tanh if w.kind == "xor" else nn.ReLU
        layers = []
        for a, b in zip(dims[:-2], dims[1:-1]):
            layers += [nn.Linear(a, b), act()]
        layers.append(nn.Linear(dims[-2], dims[-1]))
        return nn.Sequential(*layers)
    if w.kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(7 * 7 * 64, 128),
            nn.ReLU(),
            nn.Linear(128, out),
        )
    if w.kind == "lstm":

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(w.input_shape[1], w.hidden[0], batch_first=True)
                self.out = nn.Linear(w.hidden[0], out)

            def forward(self, x):
                _, (h, _) = self.lstm(x)
                return self.out(h[-1])

        return Net()
    raise ValueError(w.kind)


def run(w, x_np, y_np) -> dict:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    # tiny models: one thread is fastest (no intra-op parallelism to gain, only synchronisation to pay)
    torch.set_num_threads(1 if w.kind in ("xor", "iris") else len(os.sched_getaffinity(0)))  # pinned: 1
    net = model(w)
    opt = torch.optim.Adam(net.parameters(), lr=w.lr)
    x = torch.from_numpy(x_np)
    if w.kind == "cnn":
        x = x.permute(0, 3, 1, 2).contiguous()  # NCHW
    y = torch.from_numpy(y_np)
    if w.classes > 1:
        y = y.long()
    n, b = w.n, w.batch
    nb = math.ceil(n / b)
    g = torch.Generator().manual_seed(0)

    def epoch(acc):
        perm = torch.randperm(n, generator=g)
        for i in range(nb):
            idx = perm[i * b : (i + 1) * b]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            logits = net(xb)
            if w.classes == 1:
                loss = F.binary_cross_entropy_with_logits(logits[:, 0], yb)
            else:
                loss = F.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            acc += loss.detach() * len(idx)
        return acc

    acc = torch.zeros(())
    tiny = w.kind in ("xor", "iris")
    warm = max(1, w.epochs // 10) if tiny else 1
    t, c0 = time.perf_counter(), time.process_time()
    for _ in range(warm):
        acc = epoch(acc)
    warm_s = time.perf_counter() - t
    epochs = w.epochs // 10 if tiny else w.epochs  # eager is slow: a tenth of the tiny runs is plenty
    t, c0 = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        acc = epoch(acc)
    float(acc)
    secs, cpu = time.perf_counter() - t, time.process_time() - c0
    return {
        "seconds": secs,
        "cpu_seconds": cpu,
        "steps": epochs * nb,
        "samples": epochs * n,
        "compile_s": warm_s,
        "final_loss_sum": float(acc),
    }
