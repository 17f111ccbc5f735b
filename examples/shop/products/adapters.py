# products/adapters.py
from recsys.adapters import ItemAdapter

from .models import Product


class ProductAdapter(ItemAdapter):
    model = Product
    title = "title"
    text = "description"
    categories = "tags"
