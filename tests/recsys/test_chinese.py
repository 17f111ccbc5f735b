"""Chinese end to end with the multilingual encoder: search, reasons and labels in Chinese."""
from __future__ import annotations

import pytest
from django.test import Client, override_settings

from recsys.encoders import get_encoder
from recsys.engine import recommend
from recsys.models import Item
from recsys.services import items, labels, search
from recsys.tokens import make_token

from .engine_helpers import Timeline, isolated_cache, run_projections  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

# A small catalogue written for the test: titles and short descriptions in Chinese.
CATALOGUE = [
    ("zh1", "星际迷航", "宇航员驾驶飞船穿越银河，与外星人相遇", ["科幻", "冒险"]),
    ("zh2", "异形入侵", "外星怪物潜入太空飞船，船员拼死求生", ["科幻", "恐怖"]),
    ("zh3", "火星救援", "宇航员独自被困火星，设法活下去", ["科幻", "剧情"]),
    ("zh4", "熊猫的午后", "一只可爱的熊猫和小朋友们一起玩耍的动画", ["动画", "儿童"]),
    ("zh5", "小兔子找妈妈", "温馨的儿童动画，小兔子在森林里寻找妈妈", ["动画", "儿童"]),
    ("zh6", "北京爱情故事", "两个年轻人在北京相识相爱", ["爱情", "剧情"]),
    ("zh7", "江湖恩怨", "武林高手为师父报仇的武侠故事", ["武侠", "动作"]),
    ("zh8", "厨房里的笑声", "一家人在厨房里闹出的喜剧", ["喜剧", "家庭"]),
]
ZH = {"ITEM_ADAPTERS": ["demo.catalogue.adapters.FilmAdapter"],
      "ENCODER": {"BACKEND": "recsys.encoders.UniversalSentenceEncoder"},
      "REASONS": {"LANGUAGE": "zh", "TEMPLATES": {}}}


@pytest.fixture
def chinese_catalogue(isolated_cache):
    with override_settings(LIVEREC=ZH):
        assert get_encoder().dim == 512
        for item_id, title, text, cats in CATALOGUE:
            Item.objects.create(item_id=item_id, title=title, text=text, categories=cats)
        items.embed_items(list(Item.objects.values_list("pk", flat=True)))
        labels.mine_keyphrases()
        yield


def test_a_chinese_query_finds_the_right_items_and_says_why_in_chinese(chinese_catalogue):
    top = search.search("太空中的外星人", 3)
    assert {c.item_id for c in top[:2]} <= {"zh1", "zh2", "zh3"}, [c.item_id for c in top]
    assert top[0].reasons[0].text == "符合你的搜索“太空中的外星人”"
    kids = search.search("给小朋友看的动画片", 2)
    assert {c.item_id for c in kids} == {"zh4", "zh5"}


def test_the_search_endpoint_carries_chinese_text_both_ways(chinese_catalogue):
    body = Client().get("/liverec/search/", {"q": "武侠报仇", "k": 2}, headers={"X-LiveRec-Token": make_token("v")}).json()
    assert body["query"] == "武侠报仇"
    assert body["items"][0]["title"] == "江湖恩怨"
    assert body["items"][0]["reasons"][0]["text"] == "符合你的搜索“武侠报仇”"


def test_a_visitors_reasons_and_interest_labels_render_in_chinese(chinese_catalogue):
    log = Timeline()
    for item_id in ("zh1", "zh3"):
        log.record("reader-zh", "item_viewed", item_id)
    run_projections()
    recs = recommend("reader-zh", "for-you", 6)
    texts = [r.text for rec in recs.items for r in rec.reasons]
    assert len(recs.items) == 6
    assert any(t.startswith("根据你对") or t.startswith("与你刚浏览的《") or t.startswith("因为你浏览过《")
               for t in texts), texts
    labelled = [r for rec in recs.items for r in rec.reasons if r.kind == "interest"]
    for r in labelled:  # labels are the catalogue's own Chinese categories and phrases
        assert any("\u4e00" <= ch <= "\u9fff" for ch in r.evidence[0]["label"]), r
    trail = [ev["text"] for rec in recs.items for r in rec.reasons for ev in r.evidence if ev.get("text")]
    assert any(t.startswith("你浏览了《") for t in trail), trail
