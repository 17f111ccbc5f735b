"""A SASRec-style next-item model: a causal transformer over a visitor's item sequence.

Pure torch + numpy, no Django: the Celery task (``services.sequential``), the strategy and
the evaluation all go through ``train``, ``dumps``/``loads`` and, per request,
``NextItemModel.top`` (``score`` gives the whole distribution, for tuning scripts).

What makes it work on interaction logs (docs/evaluation.md: SASRec and GRU4Rec lead ALS by
~45% on MovieLens): next-item cross-entropy at *every* position of the sequence. On catalogues up to
``SeqConfig.full_softmax_max_items`` the softmax runs over the whole catalogue; above it, over
each target and shared sampled negatives with logQ correction (``recsys.sequence.
sampled_softmax``), so a training step's cost does not grow with the catalogue. Item
embeddings are the text embedding projected to ``d`` plus a learned per-item offset that
starts at zero, so an item that never appeared in training still has a meaningful (content)
embedding.
"""
from __future__ import annotations

import io
import logging
import math
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .sequence.sampled_softmax import NegativeSampler, sampled_softmax_loss


@dataclass
class SeqConfig:
    d: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.3
    max_len: int = 50
    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 7
    # Cut long histories at a fresh random phase every epoch (see _windows): each item is seen
    # after varying amounts of context instead of always at the same window position.
    random_windows: bool = True
    # Networks trained with seeds seed, seed+1, ...; their softmax outputs are averaged.
    ensemble: int = 1
    # Text embeddings give new items a position; the learned offset lets data correct it.
    use_text: bool = True
    # "full": softmax over the whole catalogue at every position (best on small catalogues,
    # cost ~ events x items); "sampled": each target against shared sampled negatives with
    # logQ correction (``recsys.sequence.sampled_softmax``, cost independent of the
    # catalogue); "auto": full up to ``full_softmax_max_items`` items, sampled above.
    loss: str = "auto"
    full_softmax_max_items: int = 5_000
    negatives_in_batch: int = 256
    negatives_uniform: int = 256

    LOSSES = ("auto", "full", "sampled")

    @classmethod
    def from_dict(cls, data: dict | None) -> "SeqConfig":
        known = {f for f in cls.__dataclass_fields__}
        cfg = cls(**{k: v for k, v in (data or {}).items() if k in known})
        if cfg.loss not in cls.LOSSES:
            raise ValueError(f"sequence model loss {cfg.loss!r} is not one of {', '.join(cls.LOSSES)}")
        return cfg

    def full_softmax(self, n_items: int) -> bool:
        """Whether training on ``n_items`` items takes the full softmax (see ``loss``)."""
        if self.loss == "auto":
            return n_items <= self.full_softmax_max_items
        return self.loss == "full"


class _Net(nn.Module):
    def __init__(self, n_items: int, cfg: SeqConfig, text: np.ndarray | None):
        super().__init__()
        self.cfg = cfg
        d = cfg.d
        # Index 0 is padding; items are 1..n_items.
        self.offset = nn.Embedding(n_items + 1, d, padding_idx=0)
        if text is not None and cfg.use_text:
            nn.init.zeros_(self.offset.weight)
            padded = np.vstack([np.zeros((1, text.shape[1]), dtype=np.float32), text.astype(np.float32)])
            self.register_buffer("text", torch.from_numpy(padded))
            self.proj = nn.Linear(text.shape[1], d, bias=False)
            # Scale so projected text starts at the same norm as a randomly initialised embedding.
            nn.init.normal_(self.proj.weight, std=1.0 / math.sqrt(text.shape[1]))
        else:
            nn.init.normal_(self.offset.weight, std=0.05)
            self.register_buffer("text", torch.zeros(0))
            self.proj = None
        self.pos = nn.Embedding(cfg.max_len, d)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, dim_feedforward=d * 2, dropout=cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)

    def item_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """``item_table()[rows]`` without computing the rest of the table: a sampled-softmax
        step needs only the rows its batch touches, and projecting the whole catalogue's text
        every step would bring back a cost proportional to the catalogue. The offsets' gradient
        is sparse (the touched rows only; ``_optimizers`` steps them with a lazy Adam): a dense
        one, and Adam over the whole table, was a third of a step at 100,000 items."""
        emb = F.embedding(rows, self.offset.weight, padding_idx=0, sparse=True)
        if self.proj is not None and self.text.numel():
            emb = emb + self.proj(self.text[rows])
        return emb

    def item_table(self) -> torch.Tensor:
        table = self.offset.weight
        if self.proj is not None and self.text.numel():  # a loaded model's offsets hold the folded table
            table = table + self.proj(self.text)
        return table

    def hidden(self, seqs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """seqs: (B, L) item indices, oldest first, right-padded with 0. Returns (B, L, d).

        Positions count from the start of the window (RecBole's layout), so a visitor with one
        item sits where every training sequence starts; padding comes after the real items,
        where the causal mask already hides it.
        """
        L = seqs.shape[1]
        x = table[seqs] * math.sqrt(self.cfg.d)
        x = x + self.pos(torch.arange(L, device=seqs.device))[None]
        x = self.drop(x) * (seqs > 0).unsqueeze(-1)
        causal = torch.triu(torch.ones(L, L, dtype=torch.bool, device=seqs.device), 1)
        return self.norm(self.blocks(x, mask=causal))

    def hidden_at(self, seqs: torch.Tensor, table: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """``hidden(seqs, table)[arange(B), at]`` (B, d) for inference, in about half the time.

        The same arithmetic as the eval-mode encoder layers (pre-norm, GELU, dropout off),
        spelt out so the last layer computes only what the picked positions need: keys and
        values of every position, but the query, attention, feed-forward and final norm of one
        position per row. Measured (2 members, 128-d, 2 layers, length 50, one thread): 5.5 ->
        2.7 ms for one visitor, 16.8 -> 10.1 ms for four; equal to ``hidden`` within float
        rounding (tested). The causal mask also hides the right padding, as in ``hidden``.
        """
        B, L = seqs.shape
        d = self.cfg.d
        x = table[seqs] * math.sqrt(d) + self.pos.weight[:L][None]
        x = x * (seqs > 0).unsqueeze(-1)
        rows = torch.arange(B, device=seqs.device)
        layers = list(self.blocks.layers)
        for depth, layer in enumerate(layers):
            attn = layer.self_attn
            heads, w, b = attn.num_heads, attn.in_proj_weight, attn.in_proj_bias
            h = F.layer_norm(x, (d,), layer.norm1.weight, layer.norm1.bias, layer.norm1.eps)
            if depth < len(layers) - 1:
                q, k, v = F.linear(h, w, b).view(B, L, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
                a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, L, d)
                x = x + F.linear(a, attn.out_proj.weight, attn.out_proj.bias)
                x = x + self._feed_forward(layer, x)
                continue
            k, v = F.linear(h, w[d:], b[d:]).view(B, L, 2, heads, d // heads).permute(2, 0, 3, 1, 4)
            q = F.linear(h[rows, at], w[:d], b[:d]).view(B, heads, 1, d // heads)
            visible = (torch.arange(L, device=seqs.device)[None, :] <= at[:, None])[:, None, None, :]
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=visible).reshape(B, d)
            x = x[rows, at] + F.linear(a, attn.out_proj.weight, attn.out_proj.bias)
            x = x + self._feed_forward(layer, x)
        return self.norm(x)

    @staticmethod
    def _feed_forward(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
        h = F.layer_norm(x, (x.shape[-1],), layer.norm2.weight, layer.norm2.bias, layer.norm2.eps)
        return layer.linear2(F.gelu(layer.linear1(h)))


class _NumpyForward:
    """``_Net.hidden_at`` of every ensemble member at once, in NumPy: the realtime fold's
    forward pass (a state per touched visitor, usually one or two visitors a cycle).

    At that size the work is per operation, not arithmetic: torch's dispatch (~10 us an op,
    ~40 ops per member) was half of a 1.3 ms forward of one 50-item history with two 128-d
    members here; NumPy's operations cost a few microseconds and the members share each one
    (their weights stacked on a leading axis). GELU stays in torch (exact erf: SciPy's took
    ~180 us for one layer's activations, torch's ~20). The same arithmetic as ``hidden_at``
    (tested equal within float rounding); large batches (a replay) keep the torch path,
    whose fused attention wins there.
    """

    def __init__(self, nets: list[_Net], tables: list[torch.Tensor]):
        def stack(get) -> np.ndarray:
            return np.stack([get(net).detach().numpy() for net in nets]).astype(np.float32)

        def per_layer(i: int, get) -> np.ndarray:
            return stack(lambda net: get(net.blocks.layers[i]))

        first = nets[0]
        self.d = first.cfg.d
        self.heads = first.blocks.layers[0].self_attn.num_heads
        self.source = tables[0]  # the table it views (``NextItemModel._forward`` checks it)
        # Views of the model's tables, not copies: at 100,000 items a copy would be 51 MB per member.
        self.tables = [t.numpy() for t in tables]
        self.pos = stack(lambda net: net.pos.weight)
        self.layers = []
        for i, layer in enumerate(first.blocks.layers):
            # Weights transposed once (x @ W), biases and norms shaped to broadcast over rows.
            self.layers.append({
                "norm1": (per_layer(i, lambda l: l.norm1.weight)[:, None], per_layer(i, lambda l: l.norm1.bias)[:, None],
                          layer.norm1.eps),
                "w_in": np.ascontiguousarray(per_layer(i, lambda l: l.self_attn.in_proj_weight).transpose(0, 2, 1)),
                "b_in": per_layer(i, lambda l: l.self_attn.in_proj_bias)[:, None],
                "w_out": np.ascontiguousarray(per_layer(i, lambda l: l.self_attn.out_proj.weight).transpose(0, 2, 1)),
                "b_out": per_layer(i, lambda l: l.self_attn.out_proj.bias)[:, None],
                "norm2": (per_layer(i, lambda l: l.norm2.weight)[:, None], per_layer(i, lambda l: l.norm2.bias)[:, None],
                          layer.norm2.eps),
                "w1": np.ascontiguousarray(per_layer(i, lambda l: l.linear1.weight).transpose(0, 2, 1)),
                "b1": per_layer(i, lambda l: l.linear1.bias)[:, None],
                "w2": np.ascontiguousarray(per_layer(i, lambda l: l.linear2.weight).transpose(0, 2, 1)),
                "b2": per_layer(i, lambda l: l.linear2.bias)[:, None],
            })
        self.norm = (stack(lambda net: net.norm.weight)[:, None], stack(lambda net: net.norm.bias)[:, None],
                     first.norm.eps)

    @staticmethod
    def _layer_norm(x: np.ndarray, norm: tuple) -> np.ndarray:
        weight, bias, eps = norm
        centred = x - x.mean(-1, keepdims=True)
        return centred / np.sqrt((centred * centred).mean(-1, keepdims=True) + eps) * weight + bias

    def _feed_forward(self, layer: dict, x: np.ndarray) -> np.ndarray:
        h = self._layer_norm(x, layer["norm2"]) @ layer["w1"] + layer["b1"]
        h = F.gelu(torch.from_numpy(h)).numpy()
        return h @ layer["w2"] + layer["b2"]

    @staticmethod
    def _softmax(scores: np.ndarray) -> np.ndarray:
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        return scores

    def __call__(self, seqs: np.ndarray, at: np.ndarray) -> np.ndarray:
        """seqs (B, L) right-padded indices, at (B,) the picked positions -> (B, members, d)."""
        B, L = seqs.shape
        M, d, heads = len(self.tables), self.d, self.heads
        dh = d // heads
        x = np.stack([table[seqs] for table in self.tables]) * np.float32(math.sqrt(d)) + self.pos[:, None, :L]
        x = (x * (seqs > 0)[None, :, :, None]).reshape(M, B * L, d)  # rows of all visitors together
        rows = np.arange(B)
        scale = np.float32(1.0 / math.sqrt(dh))
        for depth, layer in enumerate(self.layers):
            h = self._layer_norm(x, layer["norm1"])
            if depth < len(self.layers) - 1:
                q, k, v = (h @ layer["w_in"] + layer["b_in"]).reshape(M, B, L, 3, heads, dh).transpose(3, 0, 1, 4, 2, 5)
                scores = (q @ k.swapaxes(-1, -2)) * scale
                scores[..., np.triu(np.ones((L, L), dtype=bool), 1)] = -np.inf  # causal
                a = (self._softmax(scores) @ v).transpose(0, 1, 3, 2, 4).reshape(M, B * L, d)
                x = x + (a @ layer["w_out"] + layer["b_out"])
                x = x + self._feed_forward(layer, x)
                continue
            # The last layer: keys and values of every position, the rest at the picked one.
            k, v = (h @ layer["w_in"][:, :, d:] + layer["b_in"][:, :, d:]).reshape(M, B, L, 2, heads, dh).transpose(
                3, 0, 1, 4, 2, 5)
            q = (h.reshape(M, B, L, d)[:, rows, at] @ layer["w_in"][:, :, :d] + layer["b_in"][:, :, :d])
            scores = (q.reshape(M, B, heads, 1, dh) @ k.swapaxes(-1, -2)) * scale  # (M, B, heads, 1, L)
            hidden = (np.arange(L)[None, :] > at[:, None])[None, :, None, None, :]
            a = (self._softmax(np.where(hidden, np.float32(-np.inf), scores)) @ v).reshape(M, B, d)
            x = x.reshape(M, B, L, d)[:, rows, at] + (a @ layer["w_out"] + layer["b_out"])
            x = x + self._feed_forward(layer, x)
            return self._layer_norm(x, self.norm).transpose(1, 0, 2)
        raise ValueError("a model has at least one layer")


def _windows(seqs: Sequence[Sequence[int]], max_len: int, rng: random.Random | None = None) -> np.ndarray:
    """Training rows of max_len+1 indices (input = row[:-1], target = row[1:]), right-padded.

    Long histories are cut into consecutive windows (overlapping by one item) so every
    transition is a target once. With ``rng`` the oldest window is shortened by a random
    amount, which moves every later boundary: an item that starts a window in one epoch (no
    context) sits mid-window in the next.
    """
    rows = []
    for s in seqs:
        s = list(s)
        if len(s) < 2:
            continue
        end = len(s)
        if rng is not None and len(s) > max_len + 1:
            # Boundaries at phase, phase + max_len, ...: the newest window may end short.
            phase = rng.randrange(max_len)
            cuts = list(range(phase + 1 if phase else max_len + 1, len(s), max_len))
            start = 0
            for c in cuts + [len(s)]:
                chunk = s[start:c]
                if len(chunk) >= 2:
                    rows.append(chunk + [0] * (max_len + 1 - len(chunk)))
                start = c - 1
            continue
        while end > 1:
            start = max(0, end - (max_len + 1))
            chunk = s[start:end]
            rows.append(chunk + [0] * (max_len + 1 - len(chunk)))
            if start == 0:
                break
            end = start + 1  # overlap one item so the boundary transition is kept
    return np.asarray(rows, dtype=np.int64).reshape(-1, max_len + 1)


@dataclass
class VisitorState:
    """A visitor's stored hidden state (``NextItemModel.hidden_states``), flat, as read per request."""

    model_id: int  # the stored model version's row id it was computed with
    hidden: np.ndarray | None  # (members * d,) float32; None: none of the visitor's items is known
    last_item_id: str = ""  # the newest known item of the history (the reason's "after ...")
    last_title: str = ""

    def members(self, n_members: int) -> np.ndarray | None:
        if self.hidden is None or self.hidden.size % max(1, n_members):
            return None
        return self.hidden.reshape(n_members, -1)


@dataclass
class NextItemModel:
    """A trained model and its item vocabulary (index i+1 <-> item_ids[i]).

    ``nets`` holds one network per ensemble member (``SeqConfig.ensemble``); scores are the log
    of their mean softmax, so a softmax of the scores is the ensemble's distribution.
    """

    item_ids: list[str]
    config: SeqConfig
    nets: list[_Net]
    trained_at: float = 0.0
    metrics: dict = field(default_factory=dict)
    row_id: int | None = None  # the stored version's database row, once stored or loaded

    def __post_init__(self):
        self.index = {item_id: i + 1 for i, item_id in enumerate(self.item_ids)}
        for net in self.nets:
            net.eval()
        self._tables = None
        self._int8_tables = None
        self._numpy_forward = None
        self._ann_indexes = None  # per member (_AnnShortlist); [] when not used
        self._ann_thread = None
        self._ann_lock = threading.Lock()

    def tables(self) -> list[torch.Tensor]:
        if self._tables is None:
            with torch.no_grad():
                self._tables = [net.item_table().detach() for net in self.nets]
        return self._tables

    def add_items(self, item_ids: Sequence[str], text: np.ndarray) -> int:
        """Make items the model never saw rankable from their text embedding alone.

        Their embedding is the trained text projection (their learned offset would be zero),
        so a new film lands next to the films its title and genres resemble.
        """
        new = [(i, r) for r, i in enumerate(item_ids) if i not in self.index]
        if not new or self.nets[0].proj is None:
            return 0
        rows = torch.from_numpy(np.asarray([text[r] for _, r in new], dtype=np.float32))
        with torch.no_grad():
            self._tables = [torch.cat([table, net.proj(rows)]) for net, table in zip(self.nets, self.tables())]
        self._int8_tables = None
        with self._ann_lock:
            self._ann_indexes = None  # rebuilt over the new table (a build in flight is dropped)
        for item_id, _ in new:
            self.item_ids.append(item_id)
            self.index[item_id] = len(self.item_ids)
        return len(new)

    def encode_history(self, history: Sequence[str]) -> list[int]:
        """Known items of a history (oldest first), as indices, the last max_len of them."""
        idx = [self.index[i] for i in history if i in self.index]
        return idx[-self.config.max_len:]

    def score_batch(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """Scores (B, n_items) for histories given as index lists (oldest first): log-probabilities."""
        states = torch.from_numpy(self.hidden_states(histories))
        with torch.no_grad():
            logp = [torch.log_softmax(states[:, m] @ table[1:].T, dim=1) for m, table in enumerate(self.tables())]
            if len(logp) == 1:
                return logp[0].numpy()
            return (torch.logsumexp(torch.stack(logp), dim=0) - math.log(len(logp))).numpy()

    def score(self, history: Sequence[str]) -> np.ndarray | None:
        """Scores over ``item_ids`` for a history of item ids (oldest first); None if unknown."""
        idx = self.encode_history(history)
        if not idx:
            return None
        return self.score_batch([idx])[0]

    def hidden_states(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """The members' final hidden states (B, members, d) for histories given as index lists
        (oldest first, non-empty), in one forward pass per member for the whole batch.

        What ``top_from_hidden`` ranks from: a visitor's state is computed once per fold, in a
        batch with the other visitors the fold touched (``services.sequential.update_states``),
        and requests rank from the stored state without a forward pass.
        """
        L = max(1, min(self.config.max_len, max((len(h) for h in histories), default=1)))
        rows = np.zeros((len(histories), L), dtype=np.int64)
        last = np.zeros(len(histories), dtype=np.int64)
        for r, h in enumerate(histories):
            h = list(h)[-L:]
            rows[r, :len(h)] = h
            last[r] = max(0, len(h) - 1)
        # Right-padded to the longest history: padding sits after each row's real items, where
        # the causal mask hides it from them, so each row's state is its unpadded state.
        if len(histories) <= self.NUMPY_FORWARD_MAX_ROWS:
            return self._forward()(rows, last)
        seqs, at = torch.from_numpy(rows), torch.from_numpy(last)
        with torch.inference_mode():
            states = [net.hidden_at(seqs, table, at) for net, table in zip(self.nets, self.tables())]
        return torch.stack(states, dim=1).numpy()

    #: Batches up to this many histories take the NumPy forward (``_NumpyForward``). Measured
    #: with two 128-d members, one thread, 50-item histories: 1 visitor 0.78-0.87 against
    #: 1.26-1.78 ms in torch, 2 visitors 1.27-1.34 against 1.76-1.99, 10 visitors 5.1-5.4
    #: against 6.1-6.7; at 50 visitors the runs varied from 0.77x to 1.5x torch's time.
    NUMPY_FORWARD_MAX_ROWS = 16

    def _forward(self) -> _NumpyForward:
        tables = self.tables()
        forward = self._numpy_forward
        # Rebuilt when ``add_items`` replaced the tables (also under a concurrent call).
        if forward is None or forward.source is not tables[0]:
            forward = self._numpy_forward = _NumpyForward(self.nets, tables)
        return forward

    def top(self, history: Sequence[str], n: int, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        """The ``n`` most probable next items (item id, ensemble probability), ``exclude`` left
        out; [] when no item of the history is known. A forward pass, then ``top_from_hidden``.
        """
        idx = self.encode_history(history)
        if not idx or n <= 0:
            return []
        # Only the real positions: padding sits after them, where the causal mask hides it
        # from every real one, so a shorter input gives the same result for less work.
        return self.top_from_hidden(self.hidden_states([idx])[0], n, exclude)

    def top_from_hidden(self, hidden: np.ndarray, n: int, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        """``top`` from the members' hidden states (members, d) (see ``hidden_states``).

        One product with the item table per member, a softmax and a top-k, all in torch. On
        catalogues of ``INT8_MIN_ITEMS`` or more the product with the whole table is taken on an
        int8 copy (``_Int8Logits``): reading the float table is the bulk of a request there
        (~1.5 ms per 64-d member at 100,000 items, 0.3 ms in int8). The int8 logits give each
        member's softmax normaliser and a shortlist of ``4n`` items, whose probabilities are
        then computed exactly in float, so the candidates and their order match the float
        computation's up to the normaliser's rounding (well under 1%; tested).
        """
        if n <= 0 or hidden is None or len(hidden) != len(self.nets):
            return []
        hidden = np.array(hidden, dtype=np.float32)  # a copy: stored states are read-only buffers
        ann = self._ann()
        if ann is not None:
            return self._top_by_search(hidden, ann, n, exclude)
        if all(int8 is None for int8 in self._int8()):
            return self._top_exact(hidden, n, exclude)
        states = torch.from_numpy(hidden)
        drop = torch.tensor([self.index[i] - 1 for i in exclude if i in self.index], dtype=torch.int64)
        with torch.no_grad():
            members, probs = [], None
            for h, table, int8 in zip(states, self.tables(), self._int8()):
                logits = int8(h) if int8 is not None else h @ table[1:].T
                p = torch.softmax(logits, dim=0)
                members.append((h, table, logits, p))
                # Summed in place: at a million items each full-length temporary costs ms.
                probs = p.clone() if probs is None else probs.add_(p)
            probs.div_(len(members))
            if len(drop):
                probs[drop] = -1.0
            exact = all(int8 is None for int8 in self._int8())
            vals, at = torch.topk(probs, min(n if exact else 4 * n, probs.shape[0]))
            if not exact:
                # Exact logits for the shortlist: p * exp(exact - approximate) is the float
                # softmax under the int8 normaliser.
                keep = at[vals > 0]
                vals = torch.stack([p[keep] * torch.exp(table[1:][keep] @ h - lg[keep])
                                    for h, table, lg, p in members]).mean(dim=0)
                order = torch.argsort(vals, descending=True)[:n]
                vals, at = vals[order], keep[order]
        return [(self.item_ids[i], v) for i, v in zip(at.tolist(), vals.tolist()) if v > 0]

    def _top_exact(self, states: np.ndarray, n: int, exclude: Sequence[str]) -> list[tuple[str, float]]:
        """``top_from_hidden`` below ``INT8_MIN_ITEMS``: the float product with each member's
        whole table, in NumPy on zero-copy views of the tables. The same arithmetic as
        the torch path (float32 softmax per member, their mean); at 1,682 items torch's
        dispatch around a 12 us product was most of the call (88-97 against 167-199 us)."""
        tables = [t.numpy() for t in self.tables()]
        probs = None
        for h, table in zip(states, tables):
            logits = table[1:] @ h
            p = np.exp(logits - logits.max())
            p /= p.sum()
            probs = p if probs is None else probs + p
        probs /= len(tables)
        dropped = [self.index[i] - 1 for i in exclude if i in self.index]
        if dropped:
            probs[dropped] = -1.0
        k = min(n, len(probs))
        best = np.argpartition(-probs, k - 1)[:k] if k < len(probs) else np.arange(len(probs))
        best = best[np.argsort(-probs[best], kind="stable")]
        return [(self.item_ids[i], v) for i, v in zip(best.tolist(), probs[best].tolist()) if v > 0]

    def _top_by_search(self, states: np.ndarray, ann: list, n: int, exclude: Sequence[str]) -> list[tuple[str, float]]:
        """``top_from_hidden`` on catalogues of ``ANN_MIN_ITEMS`` or more: no product with the
        whole table. Each member's index (``_AnnShortlist``) proposes its highest-logit items;
        every member scores the union exactly, and its softmax normaliser is the shortlist's
        mass plus the rest of the catalogue's, estimated from a fixed uniform sample of items
        (the tail of a trained model's softmax is flat: the estimate moves probabilities by a
        few percent and the order within the shortlist not at all; tested against the full
        product).

        In NumPy, not torch: the shortlist is ~50 rows, so the cost is per operation, and
        torch's dispatch made the arithmetic around the two searches 2 ms of a 3 ms request
        at 100,000 items here (NumPy: a few hundred microseconds).
        """
        dropped = np.array([self.index[i] - 1 for i in exclude if i in self.index], dtype=np.int64)
        want = 4 * n + len(dropped)
        rows = np.unique(np.concatenate([a.search(h, want) for h, a in zip(states, ann)]))
        if len(dropped):
            rows = rows[~np.isin(rows, dropped)]
        if not len(rows):
            return []
        total = len(self.item_ids)
        shortlisted = np.zeros(total, dtype=bool)  # a mask, not np.isin: 10x cheaper here
        shortlisted[rows] = True
        probs = np.zeros(len(rows))
        for h, table, a in zip(states, self.tables(), ann):
            logits = table.numpy()[rows + 1] @ h
            # The sample's rows outside the shortlist stand for the rest of the catalogue.
            tail = (a.sample_rows @ h)[~shortlisted[a.sample]]
            top = max(float(logits.max()), float(tail.max()) if len(tail) else -np.inf)
            weights = np.exp(logits - top, dtype=np.float64)
            z = float(weights.sum()) + float(np.exp(tail - top, dtype=np.float64).sum()) * (total - len(rows)) / max(1, len(tail))
            probs += weights / z
        probs /= len(ann)
        order = np.argsort(-probs, kind="stable")[:n]
        return [(self.item_ids[i], v) for i, v in zip(rows[order].tolist(), probs[order].tolist()) if v > 0]

    #: Catalogue size from which ``top_from_hidden`` finds candidates by inner-product search
    #: (faiss IVF) instead of a product with the whole item table: at 100,000 items the int8
    #: product of a 128-d member alone took ~3.5 ms per request here.
    ANN_MIN_ITEMS = 50_000

    def _ann(self) -> list | None:
        """The members' search indexes, or None while there are none (a small catalogue, no
        faiss, or still building: the int8 product serves meanwhile)."""
        if self._ann_indexes is None:
            self.prepare_search(wait=False)
        return self._ann_indexes or None

    def prepare_search(self, wait: bool = True, timeout: float | None = None) -> bool:
        """Build the members' search indexes (``ANN_MIN_ITEMS`` or more items) on a background
        thread: ~8 s per member at 100,000 items, which must not stall the request that first
        needs them. ``wait``: block until built. True when the indexes are in use."""
        with self._ann_lock:
            if self._ann_indexes is None and self._ann_thread is None:
                tables = self.tables()
                if tables[0].shape[0] - 1 < self.ANN_MIN_ITEMS:
                    self._ann_indexes = []
                else:
                    def build(tables=tables):
                        try:
                            built = [_AnnShortlist.build(t[1:], seed=m) for m, t in enumerate(tables)]
                            ready = built if all(b is not None for b in built) else []
                        except Exception:  # the full product keeps serving
                            logging.getLogger(__name__).exception("recsys: could not build the candidate search")
                            ready = []
                        with self._ann_lock:
                            if self._tables is not None and self._tables[0] is tables[0]:  # items not added since
                                self._ann_indexes = ready
                            self._ann_thread = None

                    self._ann_thread = threading.Thread(target=build, name="liverec-seq-search", daemon=True)
                    self._ann_thread.start()
            thread = self._ann_thread
        if wait and thread is not None:
            thread.join(timeout)
        return bool(self._ann_indexes)

    #: Catalogue size from which ``top`` takes the full-table product in int8.
    INT8_MIN_ITEMS = 20_000

    def _int8(self) -> list:
        if getattr(self, "_int8_tables", None) is None or len(self._int8_tables) != len(self.nets):
            tables = self.tables()
            big = tables[0].shape[0] - 1 >= self.INT8_MIN_ITEMS
            self._int8_tables = [_Int8Logits.build(t[1:]) if big else None for t in tables]
        return self._int8_tables


class _AnnShortlist:
    """One member's item table behind a faiss inverted-file index for maximum inner product
    (the logits are ``table @ h``), plus a fixed uniform sample of rows for the softmax tail.

    IVF rather than a graph: it builds in seconds at model load (k-means on a sample, then one
    pass), where an HNSW graph over 100,000 items takes minutes on one thread.
    """

    SAMPLE = 2048

    def __init__(self, index, sample: np.ndarray, sample_rows: np.ndarray):
        self.index = index
        self.sample = sample
        # A contiguous copy: gathering 2,048 scattered rows of a 100,000-row table per request
        # cost 0.8 ms here (cache misses), the product with the copy a few microseconds.
        self.sample_rows = sample_rows

    @classmethod
    def build(cls, table: torch.Tensor, seed: int = 0) -> "_AnnShortlist | None":
        try:
            import faiss
        except ImportError:  # without faiss the int8 product serves
            return None
        faiss.omp_set_num_threads(1)  # as torch: one thread per worker process
        x = np.ascontiguousarray(table.detach().numpy(), dtype=np.float32)
        n, d = x.shape
        nlist = max(16, int(4 * math.sqrt(n)))
        rng = np.random.default_rng(seed)
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(x[rng.choice(n, min(n, 40 * nlist), replace=False)])
        index.add(x)
        index.nprobe = max(8, nlist // 16)  # ~6% of the lists: recall of the top 32 ~0.95 here
        sample = np.sort(rng.choice(n, min(n, cls.SAMPLE), replace=False))
        shortlist = cls(index, sample, x[sample].copy())
        shortlist.quantizer = quantizer  # the index holds a raw pointer to it
        return shortlist

    def search(self, h: np.ndarray, k: int) -> np.ndarray:
        """Rows (0-based) of the ``k`` items with the highest logit for hidden state ``h``."""
        _, found = self.index.search(np.ascontiguousarray(h[None], dtype=np.float32), k)
        return found[0][found[0] >= 0]


class _Int8Logits:
    """``h -> h @ table.T`` with the table in int8 (fbgemm's dynamic-quantised linear layer):
    a quarter of the memory traffic of the float table, logits within ~0.1 of exact."""

    def __init__(self, module: nn.Module):
        self.module = module

    @classmethod
    def build(cls, table: torch.Tensor) -> "_Int8Logits | None":
        import warnings

        try:
            from torch.ao.quantization import quantize_dynamic
        except ImportError:  # a torch without eager quantisation: the float product serves
            return None
        linear = nn.Linear(table.shape[1], table.shape[0], bias=False)
        with torch.no_grad():
            linear.weight.copy_(table)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notices (the API still ships)
            try:
                return cls(quantize_dynamic(nn.Sequential(linear), {nn.Linear}, dtype=torch.qint8).eval())
            except (RuntimeError, AssertionError):  # no quantised engine on this CPU
                return None

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        return self.module(h[None])[0]


def _train_one(seqs: list[list[int]], n_items: int, text: np.ndarray | None, cfg: SeqConfig, seed: int,
               progress: Callable[[int, float, _Net], None] | None, start: _Net | None = None) -> _Net:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rows = torch.from_numpy(_windows(seqs, cfg.max_len))
    rng = random.Random(seed) if cfg.random_windows else None
    net = start if start is not None else _Net(n_items, cfg, text)
    sampler = None if cfg.full_softmax(n_items) else NegativeSampler(n_items, cfg.negatives_in_batch,
                                                                     cfg.negatives_uniform)
    opts = _optimizers(net, cfg, sparse=sampler is not None)
    n = rows.shape[0]
    for epoch in range(cfg.epochs if n else 0):
        net.train()
        if rng is not None and epoch:
            rows = torch.from_numpy(_windows(seqs, cfg.max_len, rng))
            n = rows.shape[0]
        perm = torch.randperm(n)
        total = 0.0
        for start_row in range(0, n, cfg.batch_size):
            batch = rows[perm[start_row:start_row + cfg.batch_size]]
            loss, count = _batch_loss(net, batch, sampler)
            for opt in opts:
                opt.zero_grad()
            loss.backward()
            for opt in opts:
                opt.step()
            total += float(loss.detach()) * count
        if progress:
            progress(epoch, total / max(1, int((rows[:, 1:] > 0).sum())), net)
    return net


def _optimizers(net: _Net, cfg: SeqConfig, sparse: bool) -> list[torch.optim.Optimizer]:
    """Adam for the network; with ``sparse`` (sampled softmax) the item offsets take a lazy
    Adam that updates only the rows a step touched (their gradient is sparse, ``item_rows``)."""
    if not sparse:
        return [torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)]
    rest = [p for name, p in net.named_parameters() if name != "offset.weight"]
    return [torch.optim.Adam(rest, lr=cfg.lr, weight_decay=cfg.weight_decay),
            torch.optim.SparseAdam([net.offset.weight], lr=cfg.lr)]


def _batch_loss(net: _Net, batch: torch.Tensor, sampler: NegativeSampler | None) -> tuple[torch.Tensor, int]:
    """One batch's mean next-item loss at every position, and its number of positions."""
    inp, tgt = batch[:, :-1], batch[:, 1:]
    mask = tgt > 0
    targets = tgt[mask]
    if sampler is None:
        table = net.item_table()
        logits = net.hidden(inp, table)[mask] @ table[1:].T
        return F.cross_entropy(logits, targets - 1), len(targets)
    negatives, log_expected = sampler.draw(targets)
    # The rows this step touches, renumbered: 0 (padding) stays 0, as ``hidden`` masks by it.
    used, local = torch.unique(torch.cat([torch.zeros(1, dtype=torch.long), inp.reshape(-1), targets, negatives]),
                               return_inverse=True)
    table = net.item_rows(used)
    n_inp = inp.numel()
    local_inp = local[1:1 + n_inp].view_as(inp)
    local_tgt = local[1 + n_inp:1 + n_inp + len(targets)]
    local_neg = local[1 + n_inp + len(targets):]
    h = net.hidden(local_inp, table)[mask]
    return sampled_softmax_loss(h, table[local_tgt], table[local_neg], targets, negatives, log_expected), len(targets)


def train(sequences: Sequence[Sequence[str]], item_ids: Sequence[str], text: np.ndarray | None = None,
          config: SeqConfig | None = None, progress: Callable[[int, float, NextItemModel], None] | None = None,
          threads: int | None = None) -> NextItemModel:
    """Train on visitors' item sequences (each oldest first). ``text``: (n_items, dim) or None.

    ``config.ensemble`` members are trained one after the other, seeds ``seed``, ``seed+1``...
    ``progress(epoch, mean loss, model)`` is called after each epoch of each member (the model
    scores with the members so far plus the current weights, e.g. for a validation curve).
    """
    cfg = config or SeqConfig()
    if threads:
        torch.set_num_threads(threads)
    item_ids = list(item_ids)
    index = {item_id: i + 1 for i, item_id in enumerate(item_ids)}
    seqs = [[index[i] for i in s if i in index] for s in sequences]
    nets: list[_Net] = []
    for member in range(max(1, cfg.ensemble)):
        report = None
        if progress:
            def report(epoch, loss, net, done=tuple(nets)):
                progress(epoch, loss, NextItemModel(item_ids, cfg, [*done, net]))
        nets.append(_train_one(seqs, len(item_ids), text, cfg, cfg.seed + member, report))
    return NextItemModel(item_ids, cfg, nets, trained_at=time.time())


def warm_start(previous: NextItemModel, sequences: Sequence[Sequence[str]], item_ids: Sequence[str],
               text: np.ndarray | None = None, config: SeqConfig | None = None,
               progress: Callable[[int, float, NextItemModel], None] | None = None,
               threads: int | None = None) -> NextItemModel:
    """Continue training ``previous`` on ``sequences`` (usually the recent ones) over the
    catalogue ``item_ids``: the fresh model between full trainings.

    Every member starts from the previous member's weights. An item the previous version knew
    keeps its embedding exactly (its offset is the previous row minus its projected text); a
    new item starts from its text (offset zero), as ``add_items`` ranks it, and the epochs
    then place it by the events it took part in. The network's shape (``d``, layers, heads,
    ``max_len``) is the previous version's; ``config`` gives epochs, lr, loss and negatives.
    """
    cfg = SeqConfig.from_dict({**asdict(config or previous.config),
                               **{k: getattr(previous.config, k) for k in ("d", "layers", "heads", "max_len")},
                               "ensemble": len(previous.nets)})
    if threads:
        torch.set_num_threads(threads)
    item_ids = list(item_ids)
    index = {item_id: i + 1 for i, item_id in enumerate(item_ids)}
    seqs = [[index[i] for i in s if i in index] for s in sequences]
    known = [(i + 1, previous.index[item_id]) for i, item_id in enumerate(item_ids) if item_id in previous.index]
    new_rows = torch.tensor([r for r, _ in known], dtype=torch.long)
    old_rows = torch.tensor([r for _, r in known], dtype=torch.long)
    nets: list[_Net] = []
    for member, (old, table) in enumerate(zip(previous.nets, previous.tables())):
        net = _Net(len(item_ids), cfg, text)
        state = {k: v for k, v in old.state_dict().items() if k not in ("offset.weight", "text")}
        if net.proj is None:
            state.pop("proj.weight", None)
        net.load_state_dict(state, strict=False)
        with torch.no_grad():
            if len(known):
                base = net.item_rows(new_rows) - net.offset.weight[new_rows]  # the projected text (or 0)
                net.offset.weight[new_rows] = table[old_rows] - base
        report = None
        if progress:
            def report(epoch, loss, current, done=tuple(nets)):
                progress(epoch, loss, NextItemModel(item_ids, cfg, [*done, current]))
        nets.append(_train_one(seqs, len(item_ids), text, cfg, cfg.seed + member, report, start=net))
    return NextItemModel(item_ids, cfg, nets, trained_at=time.time())


def dumps(model: NextItemModel) -> bytes:
    """The trained networks as bytes.

    Each member's item table is stored folded (offset + projected text) and the text
    embeddings are left out: they were the bulk of the blob (n_items x 384 floats per member,
    over 1 GB at 100,000 items, more than one PostgreSQL value holds). The text projection is
    kept, so items added later still get an embedding from their text (``add_items``).
    """
    buf = io.BytesIO()
    text = model.nets[0].text
    states = []
    for net in model.nets:
        state = net.state_dict()
        if net.proj is not None and net.text.numel():
            with torch.no_grad():
                state["offset.weight"] = net.item_table().detach().clone()
        state["text"] = torch.zeros(0)
        states.append(state)
    torch.save({"item_ids": model.item_ids, "config": asdict(model.config), "states": states,
                "text_dim": int(text.shape[1]) if text.ndim == 2 else 0,
                "trained_at": model.trained_at, "metrics": model.metrics}, buf)
    return buf.getvalue()


def loads(blob: bytes) -> NextItemModel:
    data = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False)
    cfg = SeqConfig.from_dict(data["config"])
    n, text_dim = len(data["item_ids"]), data["text_dim"]
    nets = []
    # "state": versions stored before ensembles (one network).
    for state in data.get("states") or [data["state"]]:
        if state.get("text") is not None and state["text"].numel():  # stored before tables were folded
            net = _Net(n, cfg, np.zeros((n, text_dim), dtype=np.float32))
        else:
            net = _Net(n, cfg, None)
            if "proj.weight" in state:
                net.proj = nn.Linear(text_dim, cfg.d, bias=False)
        net.load_state_dict(state)
        nets.append(net)
    return NextItemModel(data["item_ids"], cfg, nets, trained_at=data["trained_at"], metrics=data.get("metrics", {}))
