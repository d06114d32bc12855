"""What only the ``datastore`` backend must do, against the real Datastore emulator."""

from __future__ import annotations

import json
import logging
import secrets
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.cloud import datastore
from google.cloud.datastore.query import PropertyFilter

from tests.apps import Browser, build_backend
from tests.servers import ServerProcess
from tipsessions import BackendUnavailable, ConfigError
from tipsessions.backends import WriteResult
from tipsessions.backends.datastore import DatastoreBackend
from tipsessions.record import ChangeSet, Record

TTL = 3600
KIND = "TipSession"


def make_backend(**options: Any) -> DatastoreBackend:
    backend = build_backend("datastore", **options)
    assert isinstance(backend, DatastoreBackend)
    return backend


@pytest.fixture
def backend(datastore_emulator: str, unique_namespace: str) -> DatastoreBackend:
    return make_backend(namespace=unique_namespace, kind=KIND, timeout=2.0)


@pytest.fixture
def raw(datastore_emulator: str, unique_namespace: str) -> Any:
    """A plain client on the same namespace, to see what is really stored."""
    return datastore.Client(namespace=unique_namespace)


def new_key() -> str:
    return secrets.token_hex(32)


#: A fixed creation time, so that records built at different moments compare equal.
CREATED = int(time.time())


def record(**data: Any) -> Record:
    return Record(data=data, created=CREATED)


def test_the_entity_has_kind_namespace_and_properties(
    backend: DatastoreBackend, raw: Any, unique_namespace: str
) -> None:
    key = new_key()
    backend.put(key, record(user="ada"), TTL)
    entity = raw.get(raw.key(KIND, key))
    assert entity is not None
    assert entity.key.namespace == unique_namespace
    assert set(entity) == {"data", "expires", "tombstone"}
    assert Record.from_json(entity["data"]) == record(user="ada")
    assert "data" in entity.exclude_from_indexes
    assert "expires" not in entity.exclude_from_indexes
    expected = datetime.now(timezone.utc) + timedelta(seconds=TTL)
    assert abs((entity["expires"] - expected).total_seconds()) < 5
    assert entity["tombstone"] is False
    # expires is indexed: purge can query it.
    query = raw.query(kind=KIND)
    query.add_filter(filter=PropertyFilter("expires", ">", datetime.now(timezone.utc)))
    assert [e.key.name for e in query.fetch()] == [key]


def test_through_an_app_the_entity_is_named_by_a_hash_of_the_id(
    datastore_emulator: str, unique_namespace: str, raw: Any
) -> None:
    browser = Browser(
        default_backend="datastore", datastore={"namespace": unique_namespace, "kind": KIND}
    )
    browser(lambda h: h.session.update(cart=[1, 2]))
    (entity,) = raw.query(kind=KIND).fetch()
    cookie = browser.cookie()
    assert cookie is not None
    assert entity.key.name not in cookie
    assert browser(lambda h: dict(h.session)) == {"cart": [1, 2]}


def test_a_tombstone_is_marked(backend: DatastoreBackend, raw: Any) -> None:
    key = new_key()
    backend.put(key, Record(tombstone=True), 30)
    assert raw.get(raw.key(KIND, key))["tombstone"] is True
    stored = backend.read(key)[0]
    assert stored is not None and stored.tombstone
    assert backend.update(key, ChangeSet(updates={"a": 1}), TTL, None) is WriteResult.GONE


def test_expires_is_checked_on_load(backend: DatastoreBackend, raw: Any) -> None:
    key = new_key()
    backend.put(key, record(a=1), TTL)
    entity = raw.get(raw.key(KIND, key))
    entity["expires"] = datetime.now(timezone.utc) - timedelta(seconds=1)
    raw.put(entity)
    assert backend.read(key) == (None, None)
    assert backend.update(key, ChangeSet(updates={"a": 2}), TTL, None) is WriteResult.GONE
    backend.touch(key, TTL)  # never revives an expired session
    assert backend.read(key) == (None, None)
    assert raw.get(raw.key(KIND, key))["data"] == entity["data"]


def test_touch_updates_expires_only(backend: DatastoreBackend, raw: Any) -> None:
    key = new_key()
    backend.put(key, record(a=1), 60)
    before = raw.get(raw.key(KIND, key))
    backend.touch(key, TTL)
    after = raw.get(raw.key(KIND, key))
    assert after["data"] == before["data"]
    assert after["tombstone"] is False
    assert "data" in after.exclude_from_indexes
    assert after["expires"] - before["expires"] > timedelta(seconds=TTL - 70)


def test_touch_never_extends_a_tombstone(backend: DatastoreBackend, raw: Any) -> None:
    key = new_key()
    backend.put(key, Record(tombstone=True), 30)
    expires = raw.get(raw.key(KIND, key))["expires"]
    backend.touch(key, TTL)
    assert raw.get(raw.key(KIND, key))["expires"] == expires


def test_namespaces_and_kinds_are_isolated(datastore_emulator: str, unique_namespace: str) -> None:
    key = new_key()
    first = make_backend(namespace=unique_namespace, kind=KIND)
    other_namespace = make_backend(namespace=unique_namespace + "-b", kind=KIND)
    other_kind = make_backend(namespace=unique_namespace, kind=KIND + "B")
    first.put(key, record(owner="first"), TTL)
    assert other_namespace.read(key) == (None, None)
    assert other_kind.read(key) == (None, None)
    other_namespace.put(key, record(owner="second"), TTL)
    other_kind.delete(key)
    assert first.read(key)[0] == record(owner="first")
    assert other_namespace.read(key)[0] == record(owner="second")


def test_an_entity_that_does_not_decode_reads_as_missing_and_is_logged_without_content(
    backend: DatastoreBackend, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    backend.put(key, record(a=1), TTL)
    entity = raw.get(raw.key(KIND, key))
    entity["data"] = "not json: secret-payload"
    raw.put(entity)
    with caplog.at_level(logging.WARNING, logger="tipsessions.security"):
        assert backend.read(key) == (None, None)
    assert [r.name for r in caplog.records] == ["tipsessions.security"]
    assert "secret-payload" not in caplog.text


def test_a_missing_project_is_a_config_error(
    datastore_emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATASTORE_PROJECT_ID", "DATASTORE_DATASET", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=r"tipsessions\.datastore\.project: is required"):
        make_backend()
    monkeypatch.setenv("DATASTORE_PROJECT_ID", "from-env-init")
    assert make_backend().client.project == "from-env-init"
    assert make_backend(project="explicit").client.project == "explicit"


def test_without_credentials_outside_the_emulator_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATASTORE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/credentials.json")
    with pytest.raises(ConfigError, match="no Google Cloud credentials"):
        make_backend(project="some-project")


def test_the_real_service_is_built_without_contacting_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A service account whose key nobody knows: enough to build a client.
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    account = {
        "type": "service_account",
        "project_id": "some-project",
        "private_key_id": "1",
        "private_key": pem.decode(),
        "client_email": "sessions@some-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    (tmp_path / "account.json").write_text(json.dumps(account))
    monkeypatch.delenv("DATASTORE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "account.json"))
    backend = make_backend(project="some-project", timeout=2.0)
    assert backend.address == "datastore.googleapis.com (project some-project)"
    # Offline, or refused for the unknown key: either way, unavailable and soon.
    began = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"datastore\.googleapis\.com"):
        backend.read(new_key())
    assert time.monotonic() - began < 15


def test_a_killed_emulator_is_backend_unavailable_within_the_timeout(
    killable_datastore: ServerProcess, unique_namespace: str
) -> None:
    backend = make_backend(namespace=unique_namespace, timeout=2.0)
    key = new_key()
    killable_datastore.kill()
    calls = {
        "read": lambda: backend.read(key),
        "put": lambda: backend.put(key, record(a=2), TTL),
        "update": lambda: backend.update(key, ChangeSet(updates={"a": 3}), TTL, None),
        "delete": lambda: backend.delete(key),
        "touch": lambda: backend.touch(key, TTL),
    }
    for name, call in calls.items():
        began = time.monotonic()
        with pytest.raises(BackendUnavailable) as caught:
            call()
        elapsed = time.monotonic() - began
        assert elapsed < 15, f"{name} took {elapsed:.1f} s"
        assert caught.value.backend == "datastore"
        assert caught.value.address == killable_datastore.address
        assert killable_datastore.address in str(caught.value)
    killable_datastore.start()
    # Within seconds of the restart, not after gRPC's reconnect backoff,
    # which by default grows to two minutes while a server is down.
    deadline = time.monotonic() + 3
    while True:
        try:
            backend.put(key, record(a=4), TTL)
            break
        except BackendUnavailable:
            assert time.monotonic() < deadline, "not reconnected 3 s after the restart"
    assert backend.read(key)[0] == record(a=4)
