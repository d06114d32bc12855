"""How the datastore backend reaches Datastore: the client, its channel, and deadlines.

Quirks this module works around:

* The client's default retry keeps trying for up to 60 s. Every request
  here has one deadline, ``timeout``, retries included, so an unreachable
  server becomes :class:`~tipsessions.BackendUnavailable` in about that time.
* gRPC's reconnect backoff grows to two minutes, so after an outage the
  client kept failing long after the server was back (10 s after a 6 s
  outage, against the emulator); the channel here caps it at one second.
  Even so, a request that arrives while the channel waits out its backoff
  fails at once with "failed to connect to all addresses", and the wait can
  outlast a short timeout (20 of 30 first requests after a flap failed with
  0.3 s). So a failed connect moves the backend to a fresh channel, with a
  subchannel of its own, and the request tries again within its deadline.
  The old channel is closed once calls still on it have met their deadline.
* With the emulator the project is looked up here: the client would ask for
  credentials, and probe a metadata server, that an emulator does not need.
"""

from __future__ import annotations

# google-cloud-datastore ships py.typed, yet most of its functions are unannotated.
# mypy: disable-error-code="no-untyped-call"
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import grpc
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry, if_exception_type
from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError
from google.cloud import datastore
from google.cloud._helpers import make_secure_channel
from google.cloud.datastore_v1.services.datastore import DatastoreClient
from google.cloud.datastore_v1.services.datastore.transports import DatastoreGrpcTransport

from ..errors import BackendUnavailable, ConfigError
from .records import LostRace

#: Where the emulator's project is found; ``gcloud beta emulators datastore
#: env-init`` sets the first two.
_EMULATOR_PROJECT_VARIABLES = ("DATASTORE_PROJECT_ID", "DATASTORE_DATASET", "GOOGLE_CLOUD_PROJECT")
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Channels to one address share a subchannel, and its backoff, unless
    # each has a pool of its own: a fresh channel must really connect anew.
    ("grpc.use_local_subchannel_pool", 1),
)
#: A channel younger than this is fresh enough: it has barely tried.
_FRESH_CHANNEL_AGE = 0.1
#: ``retry=None`` would mean the client's default retry, of up to 60 s.
_NO_RETRY = Retry(predicate=if_exception_type())


class Connection:
    """A Datastore client, where it goes (for messages), and requests with a deadline."""

    def __init__(self, backend: str, options: Any) -> None:
        self.backend, where = backend, f"tipsessions.{backend}"
        emulator = os.environ.get("DATASTORE_EMULATOR_HOST")
        project = options.project
        if emulator and project is None:
            found = (os.environ.get(variable) for variable in _EMULATOR_PROJECT_VARIABLES)
            project = next((value for value in found if value), None)
            if project is None:
                raise ConfigError(
                    f"{where}.project",
                    "is required with the emulator unless one of "
                    f"{', '.join(_EMULATOR_PROJECT_VARIABLES)} is set",
                )
        try:
            self.client = datastore.Client(project=project, namespace=options.namespace)
        except DefaultCredentialsError as error:
            raise ConfigError(where, f"no Google Cloud credentials: {error}") from error
        except OSError as error:
            # "Project was not passed and could not be determined from the environment"
            raise ConfigError(f"{where}.project", str(error)) from error
        self.address = emulator or f"datastore.googleapis.com (project {self.client.project})"
        self.timeout = float(options.timeout)
        #: For requests that :meth:`send` cannot take (a query's pages): the
        #: client's own retry, of transient failures only, within the deadline.
        self.retry = Retry(
            predicate=if_exception_type(api_exceptions.ServiceUnavailable),
            initial=0.05,
            maximum=0.5,
            timeout=self.timeout,
        )
        self._emulator = bool(emulator)
        self._lock = threading.Lock()
        self._born = 0.0
        #: The channel in use, in a list that the finalizer below shares.
        self._channel: list[grpc.Channel] = []
        if self.client._use_grpc:
            self._new_channel()
        # Applications have no shutdown hook: close the channel when the
        # backend goes away instead of leaving it to the collector.
        weakref.finalize(self, _close_channels, self._channel)

    def send(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)`` with the deadline of one storage call.

        UNAVAILABLE is retried, on a fresh channel, until the deadline; only
        idempotent requests may be sent this way.
        """
        deadline = time.monotonic() + self.timeout
        delay = 0.02
        while True:
            try:
                return call(*args, retry=_NO_RETRY, timeout=deadline - time.monotonic(), **kwargs)
            except api_exceptions.ServiceUnavailable as error:
                if time.monotonic() + delay >= deadline:
                    raise
                self._refresh_channel(error)
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    @contextmanager
    def talking(self, racing: bool = False) -> Iterator[None]:
        """The client's errors as :class:`~tipsessions.BackendUnavailable`.

        ``racing``: in a transaction, whose abort means another request wrote
        the entity meanwhile, a :class:`~tipsessions.backends.LostRace`.
        """
        try:
            yield
        except (api_exceptions.GoogleAPIError, GoogleAuthError) as error:
            if racing and isinstance(error, api_exceptions.Conflict):
                raise LostRace from error
            reason = f"{type(error).__name__}: {error}"
            raise BackendUnavailable(self.backend, self.address, reason) from error

    def _new_channel(self) -> None:
        """Send the next requests over a new gRPC channel; no connection is made yet."""
        host = urlparse(self.client.base_url).netloc
        if self._emulator:
            channel = grpc.insecure_channel(host, options=_CHANNEL_OPTIONS)
        else:
            user_agent = self.client._client_info.to_user_agent()
            credentials = self.client._credentials
            channel = make_secure_channel(credentials, user_agent, host, _CHANNEL_OPTIONS)
        self.client._datastore_api_internal = DatastoreClient(
            transport=DatastoreGrpcTransport(channel=channel),
            client_info=self.client._client_info,
        )
        for old in self._channel:
            # Closing cancels the calls still on it: let them meet their deadline first.
            closer = threading.Timer(self.timeout + 0.1, old.close)
            closer.daemon = True
            closer.start()
        self._channel[:] = [channel]
        self._born = time.monotonic()

    def _refresh_channel(self, error: Exception) -> None:
        """Move to a fresh channel after a failed connect, unless another thread just did.

        Only a failed connect: an UNAVAILABLE answered by the service
        itself says nothing against the channel.
        """
        if not self.client._use_grpc or "failed to connect" not in str(error):
            return
        with self._lock:
            if time.monotonic() - self._born >= _FRESH_CHANNEL_AGE:
                self._new_channel()


def _close_channels(channels: list[grpc.Channel]) -> None:
    for channel in channels:
        channel.close()
