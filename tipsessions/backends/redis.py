"""``redis``: sessions in Redis, through redis-py.

Each session is a Redis hash rather than one JSON string, so that a save
can merge its changes into the stored session inside Redis, in one round
trip, with no read-modify-write race:

* ``d:<key>`` holds one session value as the JSON Python wrote. The merge
  script only moves these strings around and never decodes them: Lua's
  cjson would round floats such as ``0.1 + 0.2`` on the way back.
* ``f:<id>`` holds a flash as ``"<order> <json>"``. Keyed by its id, a
  flash added by one request never overwrites another's, a read deletes
  exactly the flashes it showed, and a save replayed after a dropped
  connection adds nothing twice. The order comes from the counter ``n``, so
  flashes read back oldest first.
* ``c`` is the creation time and marks a live session; a tombstone is the
  hash ``{t: 1}``. The scripts give up without ``c``, so a save never brings
  back a session that was invalidated, regenerated or expired, and a touch
  never lengthens a tombstone's grace.
* ``u`` holds the user a session is bound to (``set_user()``), as JSON; it
  counts as content, so a bound session with no data is kept.

Timeouts are explicit and redis-py retries only a dropped connection, once
and at once: its default retries with backoff would turn a hung server into
a wait of many seconds. There is no periodic health check: the pool already
replaces a connection the server closed when it hands it out, and a PING
would add a round trip to the request that sends it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple, cast

from redis.commands.core import Script
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from ..binding import Binding
from ..cookies import Keyring
from ..errors import BackendUnavailable
from ..record import ChangeSet, FlashEntry, Record, decode_json, dumps
from .base import WriteResult
from .redis_client import topology
from .server import ServerBackend, storage_digest

# ARGV: ttl, the number of fields to delete, of values to set and of flashes
# to add, then the fields to delete, the (field, value) pairs to set and the
# (field, json) pairs of the flashes.
MERGE_SCRIPT = """
local key = KEYS[1]
if redis.call('TYPE', key).ok ~= 'hash' or redis.call('HEXISTS', key, 'c') == 0 then
  return 'gone'
end
local deletes, sets, adds = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local i = 5
for _ = 1, deletes do
  redis.call('HDEL', key, ARGV[i])
  i = i + 1
end
for _ = 1, sets do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  i = i + 2
end
for _ = 1, adds do
  local order = redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSET', key, ARGV[i], order .. ' ' .. ARGV[i + 1])
  i = i + 2
end
-- Only 'c', the counter 'n' and the lifetime 'm' left: an empty session is not kept.
local bookkeeping = 1 + redis.call('HEXISTS', key, 'n') + redis.call('HEXISTS', key, 'm')
if redis.call('HLEN', key) <= bookkeeping then
  redis.call('DEL', key)
  return 'deleted'
end
redis.call('EXPIRE', key, ARGV[1])
return 'written'
"""

# ARGV: ttl, then the (field, value) pairs of the whole record.
PUT_SCRIPT = """
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# Extends a live session only: a tombstone keeps the grace it was given.
TOUCH_SCRIPT = """
if redis.call('TYPE', KEYS[1]).ok == 'hash' and redis.call('HEXISTS', KEYS[1], 'c') == 1 then
  return redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 0
"""


class _Client(NamedTuple):
    """A redis-py client and the scripts registered on it."""

    redis: Any
    put: Script
    merge: Script
    touch: Script


class RedisBackend(ServerBackend):
    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        self._topology = topology(name, options)
        self.address = self._topology.address
        self._client: _Client | None = None
        self._lock = threading.Lock()
        # Applications have no shutdown hook: close the pooled sockets when
        # the backend goes away instead of leaving them to the collector.
        self._built: list[Any] = []
        weakref.finalize(self, close_all, self._built)

    def storage_key(self, session_id: str) -> str:
        # The braces make the digest the key's hash tag: whatever a session
        # stores lands in one Redis Cluster slot, so a script may touch all
        # of it atomically.
        return f"{self.options['prefix']}{{{storage_digest(session_id)}}}"

    def read(self, key: str) -> tuple[Record | None, Any]:
        with self._talking() as client:
            try:
                # decode_responses is off: names and values come back as bytes.
                fields = cast("dict[bytes, bytes]", client.redis.hgetall(key))
            except ResponseError as error:
                if not str(error).startswith("WRONGTYPE"):
                    raise
                return self._undecodable(key, "not a hash")
        if not fields:
            return None, None
        try:
            return decode(fields), None
        except ValueError as error:
            return self._undecodable(key, type(error).__name__)

    def put(self, key: str, record: Record, ttl: int) -> None:
        args: list[Any] = [ttl]
        for pair in encode(record).items():
            args.extend(pair)
        with self._talking() as client:
            client.put(keys=[key], args=args)

    def update(self, key: str, changes: ChangeSet, ttl: int, version: Any) -> WriteResult:
        deletes = [f"d:{name}" for name in changes.deleted]
        deletes += [f"f:{id_}" for ids in changes.flashes_read.values() for id_ in ids]
        sets = [(f"d:{name}", dumps(value)) for name, value in changes.updates.items()]
        if changes.max_age is not None:
            sets.append(("m", str(changes.max_age).encode()))
        if changes.user_changed:
            if changes.user is None:
                deletes.append("u")
            else:
                sets.append(("u", dumps(changes.user.to_json())))
        adds = [
            (f"f:{entry[0]}", dumps([flash_key, entry[1], entry[2]]))
            for flash_key, entries in changes.flashes_added.items()
            for entry in entries
        ]
        args: list[Any] = [ttl, len(deletes), len(sets), len(adds), *deletes]
        for pair in (*sets, *adds):
            args.extend(pair)
        with self._talking() as client:
            outcome = client.merge(keys=[key], args=args)
        return WriteResult(outcome.decode())

    def delete(self, key: str) -> None:
        with self._talking() as client:
            client.redis.delete(key)

    def touch(self, key: str, ttl: int) -> bool:
        with self._talking() as client:
            return bool(client.touch(keys=[key], args=[ttl]))

    @contextmanager
    def _talking(self) -> Iterator[_Client]:
        try:
            client = self._client or self._connect()
            self._topology.follow(client.redis)
            yield client
        except (RedisError, RedisClusterException, OSError) as error:
            raise BackendUnavailable(self.name, self.address, describe(error)) from error
        except (LookupError, TypeError, ValueError, AttributeError) as error:
            # Slips inside the client, seen while a cluster reshapes itself;
            # the contract allows only typed errors out of a backend.
            reason = f"unexpected {type(error).__name__} in redis-py: {error}"
            raise BackendUnavailable(self.name, self.address, reason) from error

    def _connect(self) -> _Client:
        """The client, built on first use: a cluster connects as it is built."""
        with self._lock:
            if self._client is None:
                client = self._topology.build()
                self._built.append(client)
                self._client = _Client(
                    client,
                    client.register_script(PUT_SCRIPT),
                    client.register_script(MERGE_SCRIPT),
                    client.register_script(TOUCH_SCRIPT),
                )
            return self._client

    def _undecodable(self, key: str, reason: str) -> tuple[None, None]:
        self.log_undecodable(f"under {key!r}", reason)
        return None, None


def describe(error: BaseException) -> str:
    reason = str(error) or type(error).__name__
    if isinstance(error, ResponseError):
        # Redis's own refusal (READONLY, CROSSSLOT, CLUSTERDOWN, ...) by name.
        return f"{type(error).__name__}: {reason}"
    return reason


def close_all(clients: list[Any]) -> None:
    for client in clients:
        client.close()


def encode(record: Record) -> dict[Any, Any]:
    """The hash fields of a record (see the module docstring)."""
    if record.tombstone:
        return {"t": 1}
    fields: dict[Any, Any] = {"c": record.created}
    order = 0
    for flash_key, entries in record.flashes.items():
        for flash_id, value, level in entries:
            order += 1
            fields[f"f:{flash_id}"] = f"{order} ".encode() + dumps([flash_key, value, level])
    fields["n"] = order
    if record.max_age is not None:
        fields["m"] = record.max_age
    if record.user is not None:
        fields["u"] = dumps(record.user.to_json())
    fields.update((f"d:{name}", dumps(value)) for name, value in record.data.items())
    return fields


def decode(fields: Mapping[bytes, bytes]) -> Record:
    """The record of a hash; :class:`ValueError`, and only that, when malformed.

    What Redis returns is untrusted like a cookie: every JSON field goes
    through the same decoder, with the same limits.
    """
    if fields.get(b"t") == b"1":
        return Record(tombstone=True)
    created = decode_json(fields.get(b"c", b""))
    if not isinstance(created, (int, float)) or isinstance(created, bool):
        raise ValueError("the creation time is a number")
    max_age = decode_json(fields[b"m"]) if b"m" in fields else None
    if max_age is not None and (type(max_age) is not int or max_age < 0):
        raise ValueError("the lifetime is whole seconds")
    user = Binding.from_json(decode_json(fields[b"u"])) if b"u" in fields else None
    data: dict[str, Any] = {}
    flashes: list[tuple[int, str, FlashEntry]] = []
    for name, value in fields.items():
        kind, _, rest = name.partition(b":")
        if kind == b"d":
            data[rest.decode()] = decode_json(value)
        elif kind == b"f":
            order, _, payload = value.partition(b" ")
            flash = decode_json(payload)
            if not (isinstance(flash, list) and len(flash) == 3 and isinstance(flash[0], str)):
                raise ValueError("a flash is [key, value, level]")
            flash_key, flash_value, level = flash
            flashes.append((int(order), flash_key, [rest.decode(), flash_value, level]))
    grouped: dict[str, list[FlashEntry]] = {}
    for _, flash_key, entry in sorted(flashes, key=lambda flash: flash[0]):
        grouped.setdefault(flash_key, []).append(entry)
    return Record(data=data, flashes=grouped, created=created, max_age=max_age, user=user)
