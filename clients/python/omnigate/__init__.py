"""A small client of Omnigate's gRPC API.

    from omnigate import Gateway

    with Gateway("127.0.0.1:50051") as gw:
        gw.execute("sql", "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
        with gw.transaction() as tx:       # committed here, rolled back on an exception
            tx.execute("sql", "INSERT INTO people VALUES ($1, $2)", 1, "Ada")
            tx.execute("redis", "SET greeting $1", "hello")
        rows = gw.execute("sql", "SELECT id, name FROM people")
        rows == [(1, "Ada")]; rows.columns == ["id", "name"]

Parameters and results are Python values: None, bool, int, float, str,
bytes, decimal.Decimal, datetime.datetime (aware: a zoned timestamp; naive: a
wall-clock one), datetime.date, datetime.time, Interval (or a
datetime.timedelta, sent as one), uuid.UUID, Json, list/tuple, dict (str
keys); graph results come back as Node, Relationship and Path.
"""

from ._client import Gateway, GatewayError, Result, Transaction
from ._values import Interval, Json, Node, Path, Relationship, from_value, to_value

__all__ = [
    "Gateway",
    "GatewayError",
    "Interval",
    "Json",
    "Node",
    "Path",
    "Relationship",
    "Result",
    "Transaction",
    "from_value",
    "to_value",
]
