from django.urls import path

from .consumers import RecommendationsConsumer

websocket_urlpatterns = [
    path("liverec/ws/", RecommendationsConsumer.as_asgi()),
]
