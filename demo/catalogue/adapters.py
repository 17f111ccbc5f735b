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

    @staticmethod
    def text(film):
        return " ".join(film.genres)

    categories = "genres"
    item_id_lookup = "ml_id"
