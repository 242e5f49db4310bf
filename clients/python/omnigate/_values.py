"""Python values to and from omnigate.v1.Value."""

import datetime as _dt
import decimal
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List

from .v1 import value_pb2 as _v

_EPOCH = _dt.datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=_dt.timezone.utc)
_EPOCH_DATE = _dt.date(1970, 1, 1)
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Interval:
    """A calendar interval as PostgreSQL keeps it: months, days, microseconds."""

    months: int = 0
    days: int = 0
    micros: int = 0

    def to_timedelta(self) -> _dt.timedelta:
        """As a timedelta (only without months, whose length varies)."""
        if self.months:
            raise ValueError(f"{self} has months: no fixed length")
        return _dt.timedelta(days=self.days, microseconds=self.micros)


@dataclass(frozen=True)
class Json:
    """A JSON document, sent as the json kind (a dict is sent as a map)."""

    value: Any


@dataclass
class Node:
    """A graph node."""

    id: int
    labels: List[str] = field(default_factory=list)
    properties: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Relationship:
    """A graph relationship from start_node_id to end_node_id."""

    id: int
    type: str
    start_node_id: int
    end_node_id: int
    properties: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Path:
    """A graph path: nodes[0] -relationships[0]- nodes[1] ..."""

    nodes: List[Node] = field(default_factory=list)
    relationships: List[Relationship] = field(default_factory=list)


def _micros(delta: _dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_value(x: Any) -> _v.Value:
    """A Python value as an omnigate.v1.Value."""
    if isinstance(x, _v.Value):
        return x
    if x is None:
        return _v.Value(null=_v.NULL)
    if isinstance(x, bool):
        return _v.Value(bool=x)
    if isinstance(x, int):
        if not _INT64[0] <= x <= _INT64[1]:
            raise OverflowError(f"{x} does not fit a 64-bit integer: pass a decimal.Decimal")
        return _v.Value(int=x)
    if isinstance(x, float):
        return _v.Value(float=x)
    if isinstance(x, decimal.Decimal):
        if not x.is_finite():
            raise ValueError(f"{x} is not a finite decimal")
        return _v.Value(decimal=str(x))
    if isinstance(x, str):
        return _v.Value(string=x)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return _v.Value(bytes=bytes(x))
    if isinstance(x, _dt.datetime):
        if x.tzinfo is not None and x.utcoffset() is not None:
            return _v.Value(timestamp=_v.Timestamp(unix_micros=_micros(x - _EPOCH_UTC), zoned=True))
        return _v.Value(timestamp=_v.Timestamp(unix_micros=_micros(x - _EPOCH), zoned=False))
    if isinstance(x, _dt.date):
        return _v.Value(date=_v.Date(days_since_epoch=(x - _EPOCH_DATE).days))
    if isinstance(x, _dt.time):
        micros = ((x.hour * 60 + x.minute) * 60 + x.second) * 1_000_000 + x.microsecond
        return _v.Value(time=_v.Time(micros_since_midnight=micros))
    if isinstance(x, Interval):
        return _v.Value(interval=_v.Interval(months=x.months, days=x.days, micros=x.micros))
    if isinstance(x, _dt.timedelta):
        return _v.Value(
            interval=_v.Interval(days=x.days, micros=x.seconds * 1_000_000 + x.microseconds)
        )
    if isinstance(x, uuid.UUID):
        return _v.Value(uuid=str(x))
    if isinstance(x, Json):
        return _v.Value(json=json.dumps(x.value))
    if isinstance(x, (list, tuple)):
        return _v.Value(list=_v.ValueList(values=[to_value(i) for i in x]))
    if isinstance(x, dict):
        return _v.Value(map=_map(x))
    raise TypeError(f"cannot send a {type(x).__name__} ({x!r}) as an Omnigate value")


def _map(d: Dict[str, Any]) -> "_v.ValueMap":
    entries = []
    for key, value in d.items():
        if not isinstance(key, str):
            raise TypeError(f"map keys are text; got {type(key).__name__} {key!r}")
        entries.append(_v.MapEntry(key=key, value=to_value(value)))
    return _v.ValueMap(entries=entries)


def _from_map(m: "_v.ValueMap") -> Dict[str, Any]:
    return {e.key: from_value(e.value) for e in m.entries}


def _node(n: "_v.Node") -> Node:
    return Node(id=n.id, labels=list(n.labels), properties=_from_map(n.properties))


def _relationship(r: "_v.Relationship") -> Relationship:
    return Relationship(
        id=r.id,
        type=r.type,
        start_node_id=r.start_node_id,
        end_node_id=r.end_node_id,
        properties=_from_map(r.properties),
    )


def from_value(v: _v.Value) -> Any:
    """An omnigate.v1.Value as a Python value."""
    kind = v.WhichOneof("kind")
    if kind is None or kind == "null":
        return None
    if kind in ("bool", "int", "float", "string", "bytes"):
        return getattr(v, kind)
    if kind == "decimal":
        return decimal.Decimal(v.decimal)
    if kind == "timestamp":
        delta = _dt.timedelta(microseconds=v.timestamp.unix_micros)
        return (_EPOCH_UTC if v.timestamp.zoned else _EPOCH) + delta
    if kind == "date":
        return _EPOCH_DATE + _dt.timedelta(days=v.date.days_since_epoch)
    if kind == "time":
        seconds, micros = divmod(v.time.micros_since_midnight, 1_000_000)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        return _dt.time(hour, minute, second, micros)
    if kind == "interval":
        return Interval(v.interval.months, v.interval.days, v.interval.micros)
    if kind == "uuid":
        return uuid.UUID(v.uuid)
    if kind == "json":
        return json.loads(v.json)
    if kind == "list":
        return [from_value(i) for i in v.list.values]
    if kind == "map":
        return _from_map(v.map)
    if kind == "node":
        return _node(v.node)
    if kind == "relationship":
        return _relationship(v.relationship)
    if kind == "path":
        return Path(
            nodes=[_node(n) for n in v.path.nodes],
            relationships=[_relationship(r) for r in v.path.relationships],
        )
    raise TypeError(f"unknown Omnigate value kind {kind!r}")
