# mysite/asgi.py
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
from liverec.asgi import liverec_application
application = liverec_application()
