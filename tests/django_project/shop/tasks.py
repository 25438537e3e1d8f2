"""The test project's tasks."""

import asyncio
import threading
import time

try:
    from django.tasks import task
except ImportError:  # Django 5.2: the backport
    from django_tasks import task


class ShopError(Exception):
    """What ``fail`` raises."""


@task
def add(a, b):
    return a + b


@task
def fail(message):
    raise ShopError(message)


@task(queue_name="emails")
def send_email(to):
    return {"sent": to}


@task
async def async_add(a, b):
    await asyncio.sleep(0)
    return a + b


@task(takes_context=True)
def with_context(context, label):
    return {"label": label, "attempt": context.attempt, "id": context.task_result.id}


@task
async def async_where(seconds):
    """Where an async task runs (the worker's event loop thread), after a nap."""
    await asyncio.sleep(seconds)
    return threading.current_thread().name


@task
async def async_fail(message):
    await asyncio.sleep(0)
    raise ShopError(message)


@task(takes_context=True)
async def async_with_context(context, label):
    return {"label": label, "attempt": context.attempt, "id": context.task_result.id}


@task
def until_cancelled(seconds):
    """Runs until its job's cancellation is requested (or ``seconds`` pass)."""
    from persistent_queue import current_job

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        current_job().raise_if_cancelled()
        time.sleep(0.05)
    return "not cancelled"
