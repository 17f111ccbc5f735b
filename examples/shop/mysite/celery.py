# mysite/celery.py
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
from liverec.celery import make_celery
app = make_celery("mysite")
