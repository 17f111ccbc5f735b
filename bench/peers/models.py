"""The peer models (and LiveRec's popularity baseline, as a check), each behind one small interface the tuner drives:

    model = Peer(catalogue, train, **params)      # index the training interactions
    for epoch in model.epochs(max_epochs): ...     # train; the tuner evaluates between epochs
    model.scores(targets)                          # (targets, catalogue) scores

- ``ALS``: implicit's AlternatingLeastSquares (binary interactions, confidence ``alpha``).
  A target's user vector is implicit's own fold-in (``recalculate_user``) of the target's
  history, so on ``stream`` the events that arrived after training (and new visitors) count.
- ``BPR``: RecBole 1.2.1's BPR model class (its ``calculate_loss``: BPR loss, one uniformly
  sampled unseen negative per positive), trained with Adam as RecBole's trainer would.
  BPR is transductive: a user absent from training gets the mean trained user vector (a
  popularity-like prior); events after training do not change a known user's vector.
- ``Sequential`` (SASRec, GRU4Rec): RecBole 1.2.1's model classes, trained with next-item
  cross-entropy over every position of each window in one pass (RecBole's own loop predicts
  only the last position of one prefix per sample and runs ~260 s per epoch on 2 cores; this is the
  training the reference rows in docs/evaluation.md used). Each user's sequence is cut into windows of max_len + 1,
  right-padded, so every training transition is a target once. Scoring runs the model's own
  ``forward`` on the last max_len items of the target's history.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from scipy import sparse

from recsys.evaluation import baselines
from recsys.evaluation.splits import Interaction, Target

from .protocol import user_sequences


def _recbole():
    """RecBole with its compatibility fixes, imported only by the models that use it (the
    product's venv has the recbole wheel for its data but not RecBole's runtime deps)."""
    from . import recbole_compat

    return recbole_compat


class _Indexed:
    """Catalogue items as 1..N (0 is RecBole's padding id) and training users as 1..U."""

    def __init__(self, catalogue: Sequence[str], train: Sequence[Interaction], seed: int):
        self.catalogue = list(catalogue)
        self.item_index = {item: i + 1 for i, item in enumerate(self.catalogue)}
        self.seqs = {u: [self.item_index[i] for i in items] for u, items in user_sequences(train).items()}
        self.user_index = {u: n + 1 for n, u in enumerate(self.seqs)}
        self.seed = seed
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    def history_matrix(self, targets: Sequence[Target]) -> sparse.csr_matrix:
        """Binary (targets, N) matrix of each target's history, in 0-based item columns."""
        rows, cols = [], []
        for r, t in enumerate(targets):
            idx = {self.item_index[h.item] - 1 for h in t.history if h.item in self.item_index}
            rows.extend([r] * len(idx))
            cols.extend(sorted(idx))
        return sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                 shape=(len(targets), len(self.catalogue)))


class Popularity:
    """LiveRec's built-in popularity baseline run through this harness: its figures must equal
    recsys_evaluate's "popularity" row, which checks the harness against the product."""

    def __init__(self, catalogue, train):
        self.model = baselines.Popularity(catalogue, train)

    def epochs(self, max_epochs: int | None = None) -> Iterator[int]:
        yield 0

    def scores(self, targets: Sequence[Target]) -> np.ndarray:
        return np.tile(self.model.scores([]), (len(targets), 1))


class ALS(_Indexed):
    def __init__(self, catalogue, train, *, factors: int, regularization: float, alpha: float,
                 iterations: int, threads: int = 1, seed: int = 0):
        super().__init__(catalogue, train, seed)
        from implicit.cpu.als import AlternatingLeastSquares

        self.iterations = iterations
        self.model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha,
                                             iterations=iterations, num_threads=threads, random_state=seed)
        pairs = sorted({(self.user_index[u], i - 1) for u, seq in self.seqs.items() for i in seq})
        self.user_items = sparse.csr_matrix(
            (np.ones(len(pairs), dtype=np.float32), ([u - 1 for u, _ in pairs], [i for _, i in pairs])),
            shape=(len(self.user_index), len(self.catalogue)))

    def epochs(self, max_epochs: int | None = None) -> Iterator[int]:
        # ALS is not tuned by early stopping: its iterations are a grid parameter.
        self.model.fit(self.user_items, show_progress=False)
        yield self.iterations

    def scores(self, targets: Sequence[Target]) -> np.ndarray:
        users = self.model.recalculate_user(np.arange(len(targets)), self.history_matrix(targets))
        return np.asarray(users) @ np.asarray(self.model.item_factors).T


class BPR(_Indexed):
    def __init__(self, catalogue, train, *, embedding_size: int, lr: float, weight_decay: float = 0.0,
                 batch_size: int = 2048, seed: int = 0):
        super().__init__(catalogue, train, seed)
        rb = self.rb = _recbole()
        config, dataset = rb.model_inputs(len(self.user_index), len(self.catalogue), embedding_size=embedding_size)
        self.model = rb.BPR(config, dataset)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        self.batch_size = batch_size
        pairs = sorted({(self.user_index[u], i) for u, seq in self.seqs.items() for i in seq})
        self.users = np.array([u for u, _ in pairs], dtype=np.int64)
        self.items = np.array([i for _, i in pairs], dtype=np.int64)
        self.n1 = len(self.catalogue) + 1
        self.seen = np.unique(self.users * self.n1 + self.items)

    def _negatives(self, users: np.ndarray) -> np.ndarray:
        neg = self.rng.integers(1, self.n1, size=len(users))
        for _ in range(20):  # resample the few that hit a training item of their user
            bad = np.isin(users * self.n1 + neg, self.seen)
            if not bad.any():
                break
            neg[bad] = self.rng.integers(1, self.n1, size=int(bad.sum()))
        return neg

    def epochs(self, max_epochs: int) -> Iterator[int]:
        for epoch in range(1, max_epochs + 1):
            self.model.train()
            perm = self.rng.permutation(len(self.users))
            neg = self._negatives(self.users[perm])
            for start in range(0, len(perm), self.batch_size):
                sl = perm[start:start + self.batch_size]
                batch = self.rb.Interaction({"user_id": torch.from_numpy(self.users[sl]),
                                        "item_id": torch.from_numpy(self.items[sl]),
                                        "neg_item_id": torch.from_numpy(neg[start:start + self.batch_size])})
                self.opt.zero_grad()
                self.model.calculate_loss(batch).backward()
                self.opt.step()
            yield epoch

    @torch.no_grad()
    def scores(self, targets: Sequence[Target]) -> np.ndarray:
        self.model.eval()
        table = self.model.user_embedding.weight[1:]
        prior = table.mean(0)
        users = torch.stack([table[self.user_index[t.user] - 1] if t.user in self.user_index else prior
                             for t in targets])
        return (users @ self.model.item_embedding.weight[1:].T).numpy()


def windows(seqs: Sequence[Sequence[int]], max_len: int) -> np.ndarray:
    """Rows of max_len + 1 item ids (input = row[:-1], target = row[1:]), right-padded with 0;
    a long sequence is cut from its end into consecutive windows so every transition is a
    target exactly once."""
    rows = []
    for seq in seqs:
        end = len(seq)
        while end >= 2:
            start = max(0, end - (max_len + 1))
            chunk = list(seq[start:end])
            rows.append(chunk + [0] * (max_len + 1 - len(chunk)))
            end = start + 1 if start > 0 else 0
    return np.asarray(rows, dtype=np.int64).reshape(-1, max_len + 1)


class Sequential(_Indexed):
    """SASRec or GRU4Rec (``arch``), RecBole 1.2.1's class, CE over all positions."""

    ARCHS = {
        # RecBole 1.2.1's default model settings; dropout and lr are tuned.
        "sasrec": lambda dropout: {"n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 256,
                                   "hidden_dropout_prob": dropout, "attn_dropout_prob": dropout,
                                   "hidden_act": "gelu", "layer_norm_eps": 1e-12, "initializer_range": 0.02},
        "gru4rec": lambda dropout: {"embedding_size": 64, "hidden_size": 128, "num_layers": 1,
                                    "dropout_prob": dropout},
    }

    def __init__(self, catalogue, train, *, arch: str, lr: float, dropout: float, max_len: int = 50,
                 batch_size: int = 128, seed: int = 0):
        super().__init__(catalogue, train, seed)
        rb = _recbole()
        config, dataset = rb.model_inputs(len(self.user_index), len(self.catalogue), loss_type="CE",
                                          MAX_ITEM_LIST_LENGTH=max_len, **self.ARCHS[arch](dropout))
        self.model = (rb.SASRec if arch == "sasrec" else rb.GRU4Rec)(config, dataset)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.max_len, self.batch_size = max_len, batch_size
        self.rows = torch.from_numpy(windows(list(self.seqs.values()), max_len))

    def _all_positions(self, inp: torch.Tensor) -> torch.Tensor:
        """The model's own forward, keeping every position's output: RecBole's forward ends
        by gathering the last position (``gather_indexes``); an instance attribute that
        returns its input unchanged keeps them all for this call."""
        self.model.gather_indexes = lambda output, index: output
        try:
            return self.model(inp, (inp > 0).sum(1).clamp(min=1))
        finally:
            del self.model.gather_indexes

    def epochs(self, max_epochs: int) -> Iterator[int]:
        loss_fn = torch.nn.CrossEntropyLoss(ignore_index=0)
        for epoch in range(1, max_epochs + 1):
            self.model.train()
            perm = torch.from_numpy(self.rng.permutation(len(self.rows)))
            for start in range(0, len(perm), self.batch_size):
                batch = self.rows[perm[start:start + self.batch_size]]
                inp, tgt = batch[:, :-1], batch[:, 1:]
                out = self._all_positions(inp)  # (B, L, H)
                logits = out @ self.model.item_embedding.weight.T  # RecBole's CE: all items, padding too
                loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
            yield epoch

    @torch.no_grad()
    def scores(self, targets: Sequence[Target]) -> np.ndarray:
        self.model.eval()
        seqs = torch.zeros((len(targets), self.max_len), dtype=torch.long)
        lens = torch.ones(len(targets), dtype=torch.long)
        for r, t in enumerate(targets):
            idx = [self.item_index[h.item] for h in t.history if h.item in self.item_index][-self.max_len:]
            if idx:
                seqs[r, :len(idx)] = torch.tensor(idx)
                lens[r] = len(idx)
        out = self.model(seqs, lens)  # RecBole's forward: the last real position, (B, H)
        # A target with no history (a first event on stream) gets the padding-only state.
        return (out @ self.model.item_embedding.weight[1:].T).numpy()
