from django.shortcuts import get_object_or_404, render

from .models import Product


def product_list(request):
    return render(request, "products/list.html", {"products": Product.objects.all()})


def product_detail(request, pk: int):
    return render(request, "products/detail.html", {"product": get_object_or_404(Product, pk=pk)})
