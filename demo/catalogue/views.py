from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, render

from .models import Film


def film_list(request):
    q = request.GET.get("q", "").strip()
    genre = request.GET.get("genre", "")
    films = Film.objects.all()
    if q:
        films = films.filter(Q(title__icontains=q) | Q(genres__icontains=q))
    if genre:
        films = films.filter(genres__contains=[genre])
    page = Paginator(films, 48).get_page(request.GET.get("page"))
    genres = sorted({g for gs in Film.objects.values_list("genres", flat=True) for g in gs})
    return render(request, "demo/film_list.html", {"page": page, "q": q, "genre": genre, "genres": genres})


def film_detail(request, ml_id: int):
    film = get_object_or_404(Film, ml_id=ml_id)
    return render(request, "demo/film_detail.html", {"film": film})
