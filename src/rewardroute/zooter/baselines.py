"""Baselines every routing number is reported beside (most routers land near kNN: the "routing plateau").

All work on the same frozen query embeddings as the router and return one model index per
test query (or, for random and oracle, the expected/upper-bound mean score):
  * best_single: the model with the best mean score on the training data;
  * random: a uniformly random model (its expected mean score);
  * oracle: the best model of each query (upper bound, needs every answer);
  * knn: mean training scores of the k nearest training queries (cosine), then argmax;
    k chosen by inner cross-validation;
  * mlp: a one-hidden-layer MLP regressing every model's score (MSE), then argmax;
    early-stopped on a held-out tenth of the training data;
  * rmr: reward-model ranking, the response with the best reward-model score; it generates
    with all N models, so it costs N times one call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..training.seed import set_seed
from .route import KnnMemory, unit_rows


def best_single_index(train_scores: np.ndarray) -> int:
    return int(np.argmax(np.asarray(train_scores).mean(axis=0)))


def knn_choice(train_emb: np.ndarray, train_scores: np.ndarray, test_emb: np.ndarray, k: int) -> np.ndarray:
    return KnnMemory(unit_rows(train_emb), np.asarray(train_scores)).mean_scores(test_emb, k).argmax(axis=1)


def select_knn_k(train_emb: np.ndarray, train_scores: np.ndarray, ks: Sequence[int] = (10, 25, 50, 100),
                 folds: int = 3, seed: int = 0) -> int:
    """The k with the best inner-CV mean routed score (ties: the larger k)."""
    n = len(train_scores)
    parts = np.array_split(np.random.default_rng(seed + 1).permutation(n), folds)
    best_k, best_v = ks[0], -np.inf
    for k in sorted(ks):
        v = 0.0
        for fold in parts:
            tr = np.setdiff1d(np.arange(n), fold)
            if k > len(tr):
                continue
            c = knn_choice(train_emb[tr], train_scores[tr], train_emb[fold], k)
            v += train_scores[fold][np.arange(len(fold)), c].sum()
        if v >= best_v:
            best_k, best_v = k, v
    return best_k


def mlp_scores(train_emb: np.ndarray, train_scores: np.ndarray, test_emb: np.ndarray, *, hidden: int = 128,
               epochs: int = 300, lr: float = 1e-3, weight_decay: float = 1e-3, seed: int = 0) -> np.ndarray:
    """Predicted scores [M, K] from an MLP trained full-batch with early stopping."""
    set_seed(seed)
    x = torch.from_numpy(unit_rows(np.asarray(train_emb, dtype=np.float32)))
    y = torch.from_numpy(np.asarray(train_scores, dtype=np.float32))
    mu, sd = y.mean(0), y.std(0).clamp(min=1e-6)
    y = (y - mu) / sd
    perm = torch.randperm(len(x))
    n_val = max(1, len(x) // 10)
    val, tr = perm[:n_val], perm[n_val:]
    net = nn.Sequential(nn.Linear(x.size(1), hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, y.size(1)))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    best, best_state, patience = np.inf, None, 0
    for _ in range(epochs):
        net.train()
        opt.zero_grad()
        nn.functional.mse_loss(net(x[tr]), y[tr]).backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            v = nn.functional.mse_loss(net(x[val]), y[val]).item()
        if v < best - 1e-6:
            best, best_state, patience = v, {k: t.clone() for k, t in net.state_dict().items()}, 0
        else:
            patience += 1
            if patience >= 20:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    with torch.no_grad():
        out = net(torch.from_numpy(unit_rows(np.asarray(test_emb, dtype=np.float32)))) * sd + mu
    return out.numpy()


def mlp_choice(train_emb: np.ndarray, train_scores: np.ndarray, test_emb: np.ndarray, seed: int = 0) -> np.ndarray:
    return mlp_scores(train_emb, train_scores, test_emb, seed=seed).argmax(axis=1)


def rmr_choice(reward_scores: np.ndarray) -> np.ndarray:
    """Reward-model ranking: per query, the model whose response the reward model rates best."""
    return np.asarray(reward_scores).argmax(axis=1)
