"""The demo registers its films with LiveRec through an adapter (LIVEREC["ITEM_ADAPTERS"])."""
from recsys.adapters import ItemAdapter

from .models import Film


class FilmAdapter(ItemAdapter):
    model = Film

    @staticmethod
    def item_id(film):
        return film.ml_id

    @staticmethod
    def title(film):
        return str(film)

    # The genres are the categories; the year stays in the title shown, never in the embedding.
    categories = "genres"
    text_fields = ("title", "categories")
    item_id_lookup = "ml_id"
