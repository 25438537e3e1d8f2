"""A small Django project using persistent_queue as its task backend (the tests')."""

import os

SECRET_KEY = "test-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["persistent_queue.contrib.django", "shop"]
DATABASES: dict[str, dict[str, str]] = {}

TASKS = {
    "default": {
        "BACKEND": "persistent_queue.contrib.django.Backend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"db": os.environ.get("PQ_DJANGO_DB", "data/django-queue.db"),
                    "durability": "normal"},
    },
}
