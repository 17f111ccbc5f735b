from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from recsys.engine import recommend

from .models import Film

# One page of search results: the "search" slot ranks, the demo only shows them.
SEARCH_RESULTS = 48


def film_list(request):
    q = request.GET.get("q", "").strip()
    genre = request.GET.get("genre", "")
    genres = sorted({g for gs in Film.objects.values_list("genres", flat=True) for g in gs})
    if q:
        return render(request, "demo/film_list.html", {"results": search(request, q, genre), "q": q, "genre": genre,
                                                       "genres": genres})
    films = Film.objects.all()
    if genre:
        films = films.filter(genres__contains=[genre])
    page = Paginator(films, 48).get_page(request.GET.get("page"))
    return render(request, "demo/film_list.html", {"page": page, "q": q, "genre": genre, "genres": genres})


def search(request, q: str, genre: str) -> list[tuple[Film, str]]:
    """The search box asks LiveRec's search slot (full-text + semantic, personalised by the
    visitor's interests) and shows its films in its order, each with its reason."""
    recs = recommend(getattr(request, "liverec_visitor_id", ""), "search", SEARCH_RESULTS,
                     {"query": q, "category": genre})
    films = {str(f.ml_id): f for f in Film.objects.filter(ml_id__in=[int(r.item_id) for r in recs.items
                                                                      if r.item_id.isdigit()])}
    return [(films[r.item_id], r.reasons[0].text if r.reasons else "") for r in recs.items if r.item_id in films]


def film_detail(request, ml_id: int):
    film = get_object_or_404(Film, ml_id=ml_id)
    return render(request, "demo/film_detail.html", {"film": film})
