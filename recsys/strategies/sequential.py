"""sequential/next-item: what visitors tend to engage with next, given their recent sequence.

A SASRec-style causal transformer (``recsys.seqmodel``) trained periodically on the event log
by the batch task ``recsys.tasks.train_sequential``. Per request: the visitor's hidden state,
stored by the last fold (read with the interest profile), and one product with the item table;
without a current stored state (a page item, a model newer than the state), one indexed query
for the visitor's last ``max_len`` items and a forward pass over them first (a few ms on one
CPU thread).
"""
from __future__ import annotations

from ..models import Item
from ..services import sequential as service
from .. import reasons
from .base import Candidate, Reason, RequestContext, Strategy


class NextItem(Strategy):
    id = "sequential/next-item"
    cpu_bound = True  # a forward pass and a product with the whole item table per request
    DEFAULT_CONFIG = {
        # Training (read by the batch task; see recsys.seqmodel.SeqConfig). SASRec's published
        # shape (2 layers, length 50), 128-d. Tuned on MovieLens-100K loo *validation* targets
        # (bench/tune_seq.py, NDCG@10, one seed): fixed windows peaked at 0.112 (epoch 30) and
        # fell to 0.108 by epoch 50 (over-fitting); windows cut at a random phase each epoch
        # kept improving (0.115 at 30, 0.121 at 40, 0.126 at 50, 0.126 at 70); averaging the
        # softmax of a second seed lifted a fixed-window model from 0.107 to 0.115, a third
        # added nothing; 128-d instead of 64: 0.1266 at 20, 0.131 at 40, 0.1295 at 50 (against
        # 0.1261), at twice the training time; max_len 100 or 200 did worse (0.111 at 40, 0.100
        # at 20). Two 128-d members of 50 epochs train in about 15 min of one batch worker on a
        # quiet 2-core machine; a request runs two forward passes (~1.5 ms per model on one
        # thread at 1,682 items).
        "d": 128, "layers": 2, "heads": 2, "dropout": 0.3, "max_len": 50, "epochs": 50,
        "batch_size": 128, "lr": 1e-3, "random_windows": True, "ensemble": 2,
        # "auto": full softmax up to LIVEREC["SEQUENTIAL"]["FULL_SOFTMAX_MAX_ITEMS"] items,
        # sampled softmax (256 in-batch + 256 uniform negatives, logQ-corrected) above.
        "loss": "auto", "negatives_in_batch": 256, "negatives_uniform": 256,
        # The reason's template; empty: the site's "next" template (recsys.reasons).
        "reason": "",
    }

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        model = service.current_model()
        if model is None:
            return []
        stored = ctx.sequence
        if stored is not None and stored.model_id == model.row_id and not ctx.item_id:
            # The state the last fold stored for this visitor (services.sequential.update_states):
            # no history query and no forward pass. A page item extends the history, so a
            # request with one takes the full path.
            hidden = stored.members(len(model.nets))
            top = model.top_from_hidden(hidden, n, ctx.exclude) if hidden is not None else []
            last, title = stored.last_item_id, stored.last_title
        else:
            history, titles = service.visitor_sequence_titled(ctx.visitor_id, model.config.max_len)
            if ctx.item_id:
                # The item on the page is the freshest signal even before its view is logged.
                history = history + [ctx.item_id]
            # Probabilities under the ensemble's softmax over the catalogue: positive scores,
            # comparable with the other strategies after the engine's max-normalisation.
            top = model.top(history, n, ctx.exclude)
            last = next((i for i in reversed(history) if i in model.index), None)
            title = titles.get(last) or (Item.objects.filter(item_id=last).values_list("title", flat=True).first()
                                         if top and last == ctx.item_id else None)
        if not top:
            return []
        template = str(self.config.get("reason") or reasons.templates()["next"])
        text = template.format(title=title) if title else ""  # untitled: the engine reads the title
        eng = reasons.latest_engagement(ctx.engagements, last) if last != ctx.item_id else None
        evidence = [reasons.item_evidence(last, title=title or "", event=eng.name if eng else "",
                                          at=eng.at if eng else None)]
        return [Candidate(item_id, prob, [Reason(self.id, text, item_id=last, kind="next", evidence=evidence)])
                for item_id, prob in top]
