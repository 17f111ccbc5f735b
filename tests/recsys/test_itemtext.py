"""What the encoder embeds: the adapter's text fields, with dates left out."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from recsys import adapters, itemtext

from .engine_helpers import isolated_cache  # noqa: F401


def film(title, categories=(), text="", source=""):
    return SimpleNamespace(title=title, text=text, categories=list(categories), properties={}, source=source)


def test_release_years_and_iso_dates_are_left_out_but_digits_of_a_title_stay():
    space = film("2001: A Space Odyssey (1968)", ["Drama", "Mystery", "Sci-Fi", "Thriller"])
    dead = film("Night of the Living Dead (1968)", ["Horror"])
    assert itemtext.build(space) == "2001: A Space Odyssey. Drama, Mystery, Sci-Fi, Thriller"
    assert itemtext.build(dead) == "Night of the Living Dead. Horror"
    assert "1968" not in itemtext.build(space) + itemtext.build(dead)
    assert itemtext.build(film("Apollo 13 (1995)")) == "Apollo 13"
    assert itemtext.build(film("Tent", text="Added 2024-05-01T10:00:00Z, two-person")) == "Tent. Added , two-person"


def test_the_fields_are_the_adapters(db):
    from demo.catalogue.adapters import FilmAdapter

    assert adapters.text_fields_for("catalogue.film") == FilmAdapter.text_fields == ("title", "categories")
    assert adapters.text_fields_for("events") == itemtext.DEFAULT_FIELDS
    only_title = film("Alien (1979)", ["Horror"], text="a long synopsis")
    assert itemtext.build(only_title, ("title",)) == "Alien"


def test_an_adapter_naming_an_unknown_field_is_refused_with_the_valid_ones():
    with pytest.raises(ImproperlyConfigured, match=r"choose one or more of \('title', 'text'"):
        itemtext.validate(("title", "synopsis"), "ProductAdapter")


def test_the_demo_films_embedded_text_has_no_year(film_factory):
    from recsys.models import Item

    film_factory("2001: A Space Odyssey", ["Drama", "Mystery", "Sci-Fi", "Thriller"], year=1968, ml_id=135)
    item = Item.objects.get(item_id="135")
    assert item.title == "2001: A Space Odyssey (1968)"  # the title shown keeps its year
    assert item.embedding_text() == "2001: A Space Odyssey. Drama, Mystery, Sci-Fi, Thriller"


@pytest.mark.django_db(transaction=True)
def test_more_like_this_for_2001_is_not_led_by_a_film_of_the_same_year(film_factory, isolated_cache):
    from recsys.engine import recommend
    from recsys.models import Item
    from recsys.services import items

    film_factory("2001: A Space Odyssey", ["Drama", "Mystery", "Sci-Fi", "Thriller"], year=1968, ml_id=135)
    film_factory("Night of the Living Dead", ["Horror"], year=1968, ml_id=185)
    film_factory("Event Horizon", ["Action", "Mystery", "Sci-Fi", "Thriller"], year=1997, ml_id=260)
    film_factory("Contact", ["Drama", "Sci-Fi"], year=1997, ml_id=258)
    items.embed_items(list(Item.objects.values_list("pk", flat=True)))
    recs = recommend("someone", "similar", 3, {"item_id": "135"})
    assert recs.items[0].title != "Night of the Living Dead (1968)"
    assert recs.items[-1].title == "Night of the Living Dead (1968)", [r.title for r in recs.items]
    assert recs.items[0].reasons[0].text == "Similar to 2001: A Space Odyssey (1968)"
