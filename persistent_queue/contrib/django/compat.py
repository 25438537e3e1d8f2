"""The ``django.tasks`` names this backend uses: from Django (6.0 and later) when it has
them, else from the ``django-tasks`` backport (Django 5.2, Python 3.11)."""

from __future__ import annotations

from typing import Any

try:
    from django.tasks import base as _base
    from django.tasks import exceptions as _exceptions
    from django.tasks import signals as _signals
    from django.tasks import task_backends as _task_backends
    from django.tasks.backends import base as _backend_base
except ImportError:  # Django < 6: the backport
    from django_tasks import base as _base
    from django_tasks import exceptions as _exceptions
    from django_tasks import signals as _signals
    from django_tasks import task_backends as _task_backends
    from django_tasks.backends import base as _backend_base

BaseTaskBackend: Any = _backend_base.BaseTaskBackend
Task: Any = _base.Task
TaskContext: Any = _base.TaskContext
TaskResult: Any = _base.TaskResult
TaskResultStatus: Any = _base.TaskResultStatus
TaskError: Any = _base.TaskError
task_backends: Any = _task_backends
task_enqueued: Any = _signals.task_enqueued
#: ``InvalidTask`` (Django) or ``InvalidTaskError`` (the backport).
InvalidTask: type[Exception] = (getattr(_exceptions, "InvalidTask", None)
                                or _exceptions.InvalidTaskError)
TaskResultDoesNotExist: type[Exception] = _exceptions.TaskResultDoesNotExist
