"""How the redis backend lays a record out in a Redis hash, and the scripts that change it.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..binding import Binding
from ..json_values import decode_json, dumps
from ..record import ChangeSet, FlashEntry, Record

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


def put_args(record: Record, ttl: int) -> list[Any]:
    """The arguments of :data:`PUT_SCRIPT` that store ``record`` whole."""
    args: list[Any] = [ttl]
    for pair in encode(record).items():
        args.extend(pair)
    return args


def merge_args(changes: ChangeSet, ttl: int) -> list[Any]:
    """The arguments of :data:`MERGE_SCRIPT` that apply ``changes``."""
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
    return args


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
