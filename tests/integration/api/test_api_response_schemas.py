"""The API's response bodies are the library's values: every dataclass field, documented.

The response models are derived from :mod:`persistent_queue.models` (``derived_from``), so a
field added to a dataclass shows up in ``/openapi.json`` and in the responses without being
written again; only what the API adds to a value is declared (``EXTENSIONS``).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from api_helpers import claim, lease
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from persistent_queue import Queue, models
from persistent_queue.api.schemas import derived_from, field_descriptions

#: Each value the API serves and the name of its response schema.
SERVED = {
    models.Job: "JobOut",
    models.DeadLetter: "DeadLetterOut",
    models.JobEvent: "JobEventOut",
    models.QueueInfo: "QueueOut",
    models.QueueStats: "QueueStatsOut",
    models.WorkerInfo: "WorkerOut",
    models.ThroughputPoint: "ThroughputOut",
    models.Subscription: "SubscriptionOut",
    models.ScheduleInfo: "ScheduleOut",
    models.Alert: "AlertOut",
    models.RunningJob: "RunningJobOut",
}
#: Values the API never returns as a body (deleting a queue answers 204).
NOT_SERVED = {models.DeletedQueue}
#: What a response adds to its value: computed properties that ``to_dict`` includes.
EXTENSIONS = {"QueueStatsOut": {"pending"}, "JobOut": {"run_time"}}


@pytest.fixture
def components(client: TestClient) -> dict[str, Any]:
    schemas: dict[str, Any] = client.get("/openapi.json").json()["components"]["schemas"]
    return schemas


def _field_names(value_class: type) -> list[str]:
    return [item.name for item in dataclasses.fields(value_class)]


def test_every_value_class_of_the_models_is_served_or_named_as_not_served() -> None:
    value_classes = {cls for _, cls in inspect.getmembers(models, dataclasses.is_dataclass)
                     if cls.__module__ == models.__name__}
    assert value_classes == set(SERVED) | NOT_SERVED


@pytest.mark.parametrize(("value_class", "schema_name"), SERVED.items(),
                         ids=[cls.__name__ for cls in SERVED])
def test_every_field_of_a_value_is_a_required_documented_property_of_its_schema(
    components: dict[str, Any], value_class: type, schema_name: str
) -> None:
    schema = components[schema_name]
    names = _field_names(value_class)
    assert list(schema["properties"])[:len(names)] == names
    assert set(names) <= set(schema["required"])
    undocumented = [name for name, prop in schema["properties"].items()
                    if not prop.get("description")]
    assert undocumented == []


@pytest.mark.parametrize(("value_class", "schema_name"), SERVED.items(),
                         ids=[cls.__name__ for cls in SERVED])
def test_a_schema_adds_only_its_declared_extensions(
    components: dict[str, Any], value_class: type, schema_name: str
) -> None:
    added = set(components[schema_name]["properties"]) - set(_field_names(value_class))
    assert added == EXTENSIONS.get(schema_name, set())


def test_descriptions_come_from_the_dataclass_docstring(components: dict[str, Any]) -> None:
    described = field_descriptions(models.Job)
    assert components["JobOut"]["properties"]["available_at"]["description"] == (
        described["available_at"])
    assert "retry's backoff" in described["available_at"]  # a continued line is joined
    assert components["QueueStatsOut"]["properties"]["pending"]["description"] == (
        models.QueueStats.pending.__doc__)


def test_a_field_added_to_a_dataclass_appears_in_the_derived_model() -> None:
    @dataclasses.dataclass(frozen=True)
    class Parcel:
        """A parcel.

        Attributes:
            id: The parcel's id.
            weight: Its weight in grams,
                rounded up.
        """

        id: int
        weight: float | None

    @derived_from(Parcel)
    class ParcelOut(BaseModel):
        """A parcel as sent."""

        label: str = Field(description="what the API adds")

    schema = ParcelOut.model_json_schema(mode="serialization")
    assert schema["title"] == "ParcelOut" and schema["description"] == "A parcel as sent."
    assert list(schema["properties"]) == ["id", "weight", "label"]
    assert schema["properties"]["weight"]["description"] == "Its weight in grams, rounded up."
    assert schema["required"] == ["id", "weight", "label"]
    parcel = ParcelOut.model_validate({**dataclasses.asdict(Parcel(7, 1.5)), "label": "x"})
    assert parcel.model_dump() == {"id": 7, "weight": 1.5, "label": "x"}


def _keys_of(body: Any) -> set[str]:
    assert isinstance(body, dict), body
    return set(body)


def test_each_response_carries_exactly_the_properties_of_its_schema(
    client: TestClient, queue: Queue, components: dict[str, Any]
) -> None:
    def properties(name: str) -> set[str]:
        return set(components[name]["properties"])

    client.post("/queues", json={"name": "emails", "max_attempts": 1})
    enqueued = client.post("/enqueue", json={"queue": "emails", "payload": {"to": "a"},
                                             "dedup_key": "k"})
    assert _keys_of(enqueued.json()) == properties("JobOut")
    claimed = claim(client)
    assert claimed["lease_token"] and claimed["state"] == "leased"
    assert _keys_of(claimed) == properties("JobOut")
    nacked = client.post("/nack", json={**lease(claimed), "error": "boom"}).json()
    assert nacked["outcome"] == "dead"
    assert _keys_of(nacked["dead_letter"]) == properties("DeadLetterOut")
    job_id = claimed["id"]
    assert _keys_of(client.get(f"/jobs/{job_id}").json()) == properties("JobOut")
    history = client.get(f"/jobs/{job_id}/history").json()
    assert history and all(_keys_of(event) == properties("JobEventOut") for event in history)
    assert _keys_of(client.get("/queues/emails").json()) == properties("QueueOut")
    assert _keys_of(client.get("/queues/emails/stats").json()) == properties("QueueStatsOut")
    queue.register_worker("worker-1", kind="consumer", queues=["emails"])
    assert _keys_of(client.get("/workers").json()[0]) == properties("WorkerOut")
    assert _keys_of(client.get("/throughput").json()[0]) == properties("ThroughputOut")
    subscribed = client.post("/topics/orders/subscriptions", json={"queue": "emails"}).json()
    assert _keys_of(subscribed) == properties("SubscriptionOut")
    scheduled = client.post("/schedules", json={"name": "tick", "queue": "emails",
                                                "every": 60}).json()
    assert _keys_of(scheduled) == properties("ScheduleOut")
