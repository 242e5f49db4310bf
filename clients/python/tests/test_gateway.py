"""The Python client against a real `omnigate serve` on the embedded
default (`main`: SQLite, dialect sql; `cache`: memory, dialect redis).

The binary is $OMNIGATE_BIN, else target/debug/omnigate under
$CARGO_TARGET_DIR or the repository (cargo build -p omnigate-frontends).
"""

import datetime as dt
import decimal
import os
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import pytest

from omnigate import Gateway, GatewayError, Interval, Json, from_value, to_value

REPO = Path(__file__).resolve().parents[3]


def _binary() -> Path:
    if os.environ.get("OMNIGATE_BIN"):
        return Path(os.environ["OMNIGATE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    return target / "debug" / "omnigate"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gateway():
    binary = _binary()
    if not binary.exists():
        pytest.fail(f"{binary} not found: build it (cargo build -p omnigate-frontends) or set OMNIGATE_BIN")
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        log = open(Path(workdir) / "serve.log", "w+")
        env = dict(os.environ)
        for key in [k for k in env if k.startswith("OMNIGATE_")]:
            del env[key]
        server = subprocess.Popen(
            [str(binary), "serve", "--listen", f"127.0.0.1:{port}"],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        gw = Gateway(f"127.0.0.1:{port}", timeout=10)
        try:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"omnigate serve exited {server.returncode}:\n{log.read()}")
                try:
                    grpc.channel_ready_future(gw._channel).result(timeout=0.5)
                    gw.engines()
                    break
                except (grpc.FutureTimeoutError, GatewayError):
                    if time.monotonic() > deadline:
                        pytest.fail("omnigate serve did not answer within 60 s")
            yield gw
        finally:
            gw.close()
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()


def test_engines(gateway):
    engines = {e["name"]: e for e in gateway.engines()}
    assert "sql" in engines["main"]["dialects"]
    assert "redis" in engines["cache"]["dialects"]


def test_execute_returns_rows_as_python_values(gateway):
    gateway.execute("sql", "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    inserted = gateway.execute("sql", "INSERT INTO people VALUES ($1, $2), ($3, $4)", 1, "Ada", 2, "Grace")
    assert inserted.rows_affected == 2
    rows = gateway.execute("sql", "SELECT id, name FROM people ORDER BY id")
    assert rows == [(1, "Ada"), (2, "Grace")]
    assert rows.columns == ["id", "name"]
    assert rows.engine == "main"
    assert rows.dicts()[1] == {"id": 2, "name": "Grace"}
    assert gateway.execute("sql", "SELECT $1 + 1", 41) == [(42,)]
    assert gateway.execute("redis", "SET greeting $1", "hello world", target="cache") == [("OK",)]
    assert gateway.execute("redis", "GET greeting") == [("hello world",)]


def test_errors_say_the_status_and_the_message(gateway):
    with pytest.raises(GatewayError) as error:
        gateway.execute("sql", "SELECT * FROM no_such_table")
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT or error.value.code == grpc.StatusCode.NOT_FOUND
    assert "no_such_table" in error.value.details
    with pytest.raises(GatewayError) as error:
        gateway.execute("nosuchdialect", "x")
    assert error.value.code != grpc.StatusCode.OK


def test_transaction_commits_on_success(gateway):
    gateway.execute("sql", "CREATE TABLE ledger (id INTEGER PRIMARY KEY, note TEXT)")
    with gateway.transaction() as tx:
        tx.execute("sql", "INSERT INTO ledger VALUES ($1, $2)", 1, "committed")
        tx.execute("redis", "SET ledger:1 $1", "committed")
        # Not visible outside the transaction yet.
        assert gateway.execute("sql", "SELECT count(*) FROM ledger") == [(0,)]
    assert tx.done
    assert gateway.execute("sql", "SELECT note FROM ledger WHERE id = 1") == [("committed",)]
    assert gateway.execute("redis", "GET ledger:1") == [("committed",)]


def test_transaction_rolls_back_on_an_exception(gateway):
    gateway.execute("sql", "CREATE TABLE drafts (id INTEGER PRIMARY KEY)")
    with pytest.raises(ZeroDivisionError):
        with gateway.transaction() as tx:
            tx.execute("sql", "INSERT INTO drafts VALUES ($1)", 1)
            tx.execute("redis", "SET drafts:1 $1", "x")
            1 / 0
    assert gateway.execute("sql", "SELECT count(*) FROM drafts") == [(0,)]
    assert gateway.execute("redis", "GET drafts:1") == [(None,)]
    # The transaction is gone: using its id again is refused.
    with pytest.raises(GatewayError):
        gateway.execute("sql", "SELECT 1", _tx_id=tx.tx_id)


def test_explicit_commit_and_rollback(gateway):
    gateway.execute("sql", "CREATE TABLE explicit (id INTEGER PRIMARY KEY)")
    tx = gateway.transaction()
    tx.execute("sql", "INSERT INTO explicit VALUES (1)")
    assert "main" in tx.commit()
    tx = gateway.transaction()
    tx.execute("sql", "INSERT INTO explicit VALUES (2)")
    tx.rollback()
    with pytest.raises(RuntimeError):
        tx.execute("sql", "SELECT 1")
    assert gateway.execute("sql", "SELECT id FROM explicit") == [(1,)]


def test_values_round_trip_through_the_gateway(gateway):
    # $1 echoed back by each engine: what the engines keep, as they keep it.
    for value in [None, True, False, 0, -(2**63), 2**63 - 1, 1.5, -0.25, "", "héllo ✓", b"", b"\x00\xff\x10"]:
        assert gateway.execute("sql", "SELECT $1", value) == [(value,)], value
    # Redis gives back text it was given as text, bytes as bytes.
    for value in ["text", b"\x00\xffbinary"]:
        gateway.execute("redis", "SET roundtrip $1", value)
        assert gateway.execute("redis", "GET roundtrip") == [(value,)]
    assert gateway.execute("redis", "GET no:such:key") == [(None,)]
    # A list reply is a Python list.
    gateway.execute("redis", "DEL l")
    gateway.execute("redis", "RPUSH l $1 $2 $3", "a", "b", "c")
    assert gateway.execute("redis", "LRANGE l 0 -1") == [(["a", "b", "c"],)]
    # SQLite keeps dates and times as text and NUMERIC as a number: they
    # come back so (the kinds themselves round-trip in the test below).
    gateway.execute("sql", "CREATE TABLE typed (d DATE, ts TIMESTAMP, n NUMERIC)")
    when = dt.datetime(2026, 12, 6, 3, 4, 5, 123456)
    gateway.execute("sql", "INSERT INTO typed VALUES ($1, $2, $3)", dt.date(2026, 12, 6), when, decimal.Decimal("12.5"))
    assert gateway.execute("sql", "SELECT d, ts, n FROM typed") == [("2026-12-06", "2026-12-06 03:04:05.123456", 12.5)]
    # What an engine cannot store is refused naming the parameter.
    with pytest.raises(GatewayError) as error:
        gateway.execute("sql", "SELECT $1", [1, 2])
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "parameter $1" in error.value.details


def test_time_series_timestamps_are_datetimes_both_ways(gateway):
    at = dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.timezone.utc)  # 1700000000
    assert gateway.execute("ts", "cpu,host=a usage=0.5 1700000000", precision="s") == []
    rows = gateway.execute("ts", "cpu_usage", time=at)
    assert rows.columns == ["labels", "timestamp", "value"]
    assert rows == [({"__name__": "cpu_usage", "host": "a"}, at, 0.5)]
    # A range query: the datetimes sent are the ones given back.
    rows = gateway.execute(
        "ts", "cpu_usage", start=at, end=at + dt.timedelta(minutes=1), step=dt.timedelta(minutes=1)
    )
    assert [row[1] for row in rows] == [at, at + dt.timedelta(minutes=1)]
    # A naive datetime is no instant: refused before sending.
    with pytest.raises(ValueError):
        gateway.execute("ts", "cpu_usage", time=dt.datetime(2023, 11, 14))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        7,
        -(2**63),
        2.5,
        "text",
        b"\x00\x01",
        decimal.Decimal("12345.6789"),
        dt.datetime(2026, 12, 6, 3, 4, 5, 6),
        dt.datetime(1969, 7, 20, 20, 17, 40, tzinfo=dt.timezone.utc),
        dt.date(1815, 12, 10),
        dt.time(23, 59, 58, 999999),
        Interval(months=1, days=2, micros=3),
        uuid.UUID("67e55044-10b1-426f-9247-bb680e5fe0c8"),
        [1, "two", [3.0, None]],
        {"a": 1, "b": {"c": [True]}},
    ],
)
def test_values_convert_both_ways(value):
    assert from_value(to_value(value)) == value


def test_values_that_need_a_word():
    # An aware datetime in another zone arrives as the same instant in UTC.
    cet = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert from_value(to_value(cet)) == cet
    assert from_value(to_value(cet)).tzinfo == dt.timezone.utc
    assert from_value(to_value(dt.timedelta(days=1, seconds=2))) == Interval(0, 1, 2_000_000)
    assert from_value(to_value(Json({"a": [1]}))) == {"a": [1]}
    assert from_value(to_value((1, 2))) == [1, 2]
    with pytest.raises(OverflowError):
        to_value(2**63)
    with pytest.raises(TypeError):
        to_value({1: "a"})
    with pytest.raises(TypeError):
        to_value(object())
