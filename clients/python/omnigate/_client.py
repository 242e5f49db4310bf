"""Gateway: statements and transactions over omnigate.v1.Gateway."""

import datetime as _dt
from typing import Any, List, Optional, Sequence, Tuple, Union

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from ._values import from_value, to_value
from .v1 import gateway_pb2 as _pb
from .v1 import gateway_pb2_grpc as _rpc


class GatewayError(Exception):
    """A call the gateway refused or failed: `code` is the grpc.StatusCode,
    `details` the gateway's message."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class Result(list):
    """The rows of a statement, each a tuple of Python values, with
    `columns` (names), `rows_affected` and `engine` (which engine ran it)."""

    def __init__(self, rows: List[Tuple[Any, ...]], columns: List[str], rows_affected: int, engine: str):
        super().__init__(rows)
        self.columns = columns
        self.rows_affected = rows_affected
        self.engine = engine

    def dicts(self) -> List[dict]:
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row)) for row in self]


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


_PRECISIONS = {"ns": 0, "us": 1, "ms": 2, "s": 3}


def _timestamp(at: _dt.datetime) -> timestamp_pb2.Timestamp:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at} has no time zone: give an aware datetime (e.g. tzinfo=timezone.utc)")
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(at.astimezone(_dt.timezone.utc))
    return t


def _seconds(x: Union[float, _dt.timedelta]) -> float:
    return x.total_seconds() if isinstance(x, _dt.timedelta) else float(x)


def _raise(e: grpc.RpcError) -> "GatewayError":
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = e.details() if hasattr(e, "details") else str(e)
    return GatewayError(code, details or "")


class Gateway:
    """A connection to `omnigate serve`.

    `address` is host:port. `token` is sent as `authorization: Bearer` when
    the gateway has a tokens file. `credentials` (grpc.ssl_channel_credentials)
    makes a TLS channel. `timeout` is each call's deadline in seconds.
    """

    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        *,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        timeout: Optional[float] = 30.0,
        channel: Optional[grpc.Channel] = None,
    ):
        if channel is None:
            channel = (
                grpc.secure_channel(address, credentials)
                if credentials is not None
                else grpc.insecure_channel(address)
            )
        self._channel = channel
        self._stub = _rpc.GatewayStub(channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self.timeout = timeout

    def _call(self, method, request, timeout: Optional[float] = None):
        try:
            return method(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise _raise(e) from None

    def execute(
        self,
        dialect: str,
        statement: str,
        *params: Any,
        target: Optional[str] = None,
        max_rows: Optional[int] = None,
        timeout: Optional[float] = None,
        read_only: bool = False,
        named: Optional[dict] = None,
        database: Optional[str] = None,
        time: Optional[_dt.datetime] = None,
        start: Optional[_dt.datetime] = None,
        end: Optional[_dt.datetime] = None,
        step: Optional[Union[float, _dt.timedelta]] = None,
        precision: Optional[str] = None,
        _tx_id: str = "",
    ) -> Result:
        """Runs one statement: `params` bind to $1..$n, `named` to $name
        (Cypher). Returns its rows as tuples of Python values.

        `timeout` (seconds) is the call's deadline (default: the Gateway's). For the `ts` dialect:
        `time` (an instant query's time), `start`, `end` (aware datetimes)
        and `step` (seconds or a timedelta) for a range query; `precision`
        ("ns", "us", "ms", "s") of written line-protocol timestamps."""
        options = _pb.ExecuteOptions(read_only=read_only, database=database or "")
        if max_rows is not None:
            options.max_rows = max_rows
        for name, at in (("time", time), ("start", start), ("end", end)):
            if at is not None:
                getattr(options.ts, name).CopyFrom(_timestamp(at))
        if step is not None:
            options.ts.step.CopyFrom(_duration(_seconds(step)))
        if precision is not None:
            if precision not in _PRECISIONS:
                raise ValueError(f"precision is one of {', '.join(_PRECISIONS)}; got {precision!r}")
            options.ts.precision = _PRECISIONS[precision]
        request = _pb.ExecuteRequest(
            dialect=dialect,
            statement=statement,
            params=[to_value(p) for p in params],
            target=target or "",
            tx_id=_tx_id,
            options=options,
        )
        for key, value in (named or {}).items():
            request.named_params[key].CopyFrom(to_value(value))
        reply = self._call(self._stub.Execute, request, timeout)
        rows = [tuple(from_value(v) for v in row.values) for row in reply.rows]
        return Result(rows, [c.name for c in reply.columns], reply.rows_affected, reply.engine)

    def transaction(self, *, read_only: bool = False, idle_timeout: Optional[float] = None) -> "Transaction":
        """A transaction over any of the engines, as a context manager:
        committed when the block ends, rolled back when it raises."""
        request = _pb.BeginRequest(read_only=read_only)
        if idle_timeout is not None:
            request.idle_timeout.CopyFrom(_duration(idle_timeout))
        reply = self._call(self._stub.Begin, request)
        return Transaction(self, reply.tx_id)

    def engines(self) -> List[dict]:
        """The engines: name, kind, dialects and health."""
        reply = self._call(self._stub.ListEngines, _pb.ListEnginesRequest())
        return [
            {
                "name": e.name,
                "kind": e.kind,
                "dialects": list(e.dialects),
                "serving": e.health.status == _pb.Health.SERVING,
            }
            for e in reply.engines
        ]

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Transaction:
    """A transaction begun on the gateway. Use it as a context manager, or
    call commit() or rollback() once."""

    def __init__(self, gateway: Gateway, tx_id: str):
        self.gateway = gateway
        self.tx_id = tx_id
        self.done = False

    def execute(self, dialect: str, statement: str, *params: Any, **options: Any) -> Result:
        """Gateway.execute inside this transaction."""
        if self.done:
            raise RuntimeError(f"transaction {self.tx_id} has ended")
        return self.gateway.execute(dialect, statement, *params, _tx_id=self.tx_id, **options)

    def commit(self) -> Sequence[str]:
        """Commits; returns the engines it committed on."""
        self.done = True
        reply = self.gateway._call(self.gateway._stub.Commit, _pb.CommitRequest(tx_id=self.tx_id))
        return list(reply.engines)

    def rollback(self) -> None:
        """Rolls back on every engine the transaction touched."""
        self.done = True
        self.gateway._call(self.gateway._stub.Rollback, _pb.RollbackRequest(tx_id=self.tx_id))

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.done:
            return
        if exc_type is None:
            self.commit()
        else:
            try:
                self.rollback()
            except GatewayError:
                pass  # the block's own exception is the one to see
