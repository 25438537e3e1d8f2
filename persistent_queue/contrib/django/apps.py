"""The Django app of the backend: it brings the ``pq_worker`` management command."""

from __future__ import annotations

from django.apps import AppConfig


class PersistentQueueConfig(AppConfig):  # type: ignore[misc]
    """``INSTALLED_APPS = [..., "persistent_queue.contrib.django"]``."""

    name = "persistent_queue.contrib.django"
    label = "persistent_queue"
    verbose_name = "persistent_queue"
