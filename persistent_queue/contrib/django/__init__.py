"""persistent_queue as a ``django.tasks`` backend (docs/django.md).

``TASKS = {"default": {"BACKEND": "persistent_queue.contrib.django.Backend", "OPTIONS":
{"db": "data/queue.db"}}}``; add ``"persistent_queue.contrib.django"`` to ``INSTALLED_APPS``
for ``python manage.py pq_worker``. Django 6 (``django.tasks``) or Django 5.2 with the
``django-tasks`` backport: ``pip install persistent-queue[django]``.
"""

from __future__ import annotations

from .backend import Backend

__all__ = ["Backend"]
