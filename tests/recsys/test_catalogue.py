"""The catalogue projection: host models, the batch worker, encoder backends, HNSW per dimension."""
from __future__ import annotations

import io

import numpy as np
import pytest

from devstack.stack import wait_for
from django.core.management import call_command
from django.test import override_settings

import recsys
from recsys import adapters
from recsys.encoders import SentenceTransformerEncoder, UniversalSentenceEncoder, get_encoder
from recsys.models import Item
from recsys.services import items
from recsys.services.vectors import hnsw_index_exists, index_name




def cos(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_saving_a_registered_object_re_embeds_it_through_the_worker(stack):
    from django.contrib.auth.models import Group

    recsys.register(Group, title="name", text=lambda g: f"Shop section {g.name}", categories=lambda g: ["section"],
                    filters={"name__startswith": "Shop"})
    try:
        group = Group.objects.create(name="Shop garden tools and lawnmowers")
        name = get_encoder().name
        item = wait_for(lambda: Item.objects.filter(item_id=str(group.pk), embedding_model=name).first())
        assert item.source == "auth.group" and item.categories == ["section"]
        first = np.asarray(item.embedding)
        group.name = "Shop children's picture books"
        group.save()
        item = wait_for(lambda: (lambda it: it if cos(it.embedding, first) < 0.95 else None)(
            Item.objects.get(item_id=str(group.pk))))
        books = get_encoder().encode(["Shop children's picture books. Shop section Shop children's picture books. section"])[0]
        assert cos(item.embedding, books) > 0.99
        assert list(adapters.adapter_for(Group).queryset()) == [group]
    finally:
        adapters.unregister(Group)


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_recsys_embed_all_re_embeds_through_the_worker_and_builds_the_index_once(stack, film_factory):
    films = [("Toy Story", ["Animation"]), ("Alien", ["Sci-Fi"])] * 101  # above the bulk threshold (200)
    for n, (title, genres) in enumerate(films):
        film_factory(f"{title} {n}", genres)
    name = get_encoder().name
    wait_for(lambda: items.embedded_count() == Item.objects.count(), timeout=300)
    out = io.StringIO()
    call_command("recsys_embed", "--all", "--timeout", "600", stdout=out, stderr=io.StringIO())
    assert f"{len(films)} items embedded" in out.getvalue()
    assert not Item.objects.exclude(embedding_model=name).exists()
    assert hnsw_index_exists(384)
    toy, alien = Item.objects.get(title="Toy Story 0 (1995)"), Item.objects.get(title="Alien 1 (1995)")
    assert cos(toy.embedding, get_encoder().encode(["Toy Story 0. Animation"])[0]) > 0.99
    assert cos(toy.embedding, alien.embedding) < 0.9


def test_both_encoder_backends_load_offline_and_understand_their_languages():
    st, use = SentenceTransformerEncoder(), UniversalSentenceEncoder()
    assert st.check() is None and use.check() is None
    e = st.encode(["a funny animated film for children", "an animated cartoon for kids", "tax law for companies"])
    assert e.shape == (3, 384) and abs(float(np.linalg.norm(e[0])) - 1) < 1e-5
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
    z = use.encode(["给孩子们看的动画电影", "an animated film for children", "企业税法"])
    assert z.shape == (3, 512) and abs(float(np.linalg.norm(z[0])) - 1) < 1e-5
    # Chinese and English of the same meaning meet; an unrelated Chinese text does not.
    assert z[0] @ z[1] > z[0] @ z[2] + 0.2


@pytest.mark.django_db(transaction=True)
def test_switching_the_backend_re_embeds_into_a_new_dimension_with_its_own_hnsw_index(film_factory):
    film_factory("Toy Story", ["Animation", "Children's"])
    film_factory("Crouching Tiger 卧虎藏龙", ["Action", "Drama"])
    items.embed_items(items.stale_item_pks())
    assert hnsw_index_exists(384)
    with override_settings(LIVEREC={"ITEM_ADAPTERS": ["demo.catalogue.adapters.FilmAdapter"],
                                    "ENCODER": {"BACKEND": "recsys.encoders.UniversalSentenceEncoder"}}):
        assert get_encoder().dim == 512
        stale = items.stale_item_pks()
        assert len(stale) == Item.objects.count()
        items.embed_items(stale)
        assert items.stale_item_pks() == []
        assert {len(e) for e in Item.objects.values_list("embedding", flat=True)} == {512}
        assert hnsw_index_exists(512)
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [index_name(512)])
            assert "vector(512)" in cur.fetchone()[0]
    assert get_encoder().dim == 384
