"""redis-py through the gateway's Redis-protocol (RESP) front end.

Run by tests/tests/resp_wire/clients.rs against a real Redis and the
embedded memory engine: python resp_clients.py HOST PORT TOKEN PREFIX.
Keys start with PREFIX. Every check is an assert; the script prints `ok`
at the end.
"""

import sys

import redis

HOST, PORT, TOKEN, PREFIX = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def client(protocol):
    return redis.Redis(host=HOST, port=PORT, password=TOKEN, protocol=protocol, socket_timeout=10)


KEYS = PREFIX


def k(name):
    return f"{KEYS}:{name}"


def commands(r, protocol):
    tag = f"RESP{protocol}"
    assert r.ping() is True, tag
    assert r.echo(b"\x00\xff") == b"\x00\xff", tag
    assert r.set(k("s"), b"v\r\n\x00") is True, tag
    assert r.get(k("s")) == b"v\r\n\x00", tag
    assert r.incr(k("n")) == 1 and r.incrby(k("n"), 4) == 5, tag
    assert r.rpush(k("l"), "a", "b", "c") == 3, tag
    assert r.lrange(k("l"), 0, -1) == [b"a", b"b", b"c"], tag
    r.hset(k("h"), mapping={"f1": "1", "f2": "2"})
    # A map in RESP3, a flat array in RESP2: redis-py gives a dict either way.
    got = r.hgetall(k("h"))
    assert got == {b"f1": b"1", b"f2": b"2"}, (tag, got)
    assert r.sadd(k("set"), "x", "y") == 2 and r.smembers(k("set")) == {b"x", b"y"}, tag
    assert r.zadd(k("z"), {"m": 1.5}) == 1, tag
    assert r.zscore(k("z"), "m") == 1.5, tag
    assert r.delete(k("s")) == 1 and r.get(k("s")) is None, tag
    assert r.client_setname("py") is True and r.client_getname() in (b"py", "py"), tag
    try:
        r.execute_command("NOSUCHCOMMAND")
        raise AssertionError(f"{tag}: an unknown command fails")
    except redis.exceptions.ResponseError as e:
        # Redis: "unknown command"; the memory engine: "not supported".
        assert "nosuchcommand" in str(e).lower(), (tag, str(e))
    try:
        r.lpush(k("n"), "x")
        raise AssertionError(f"{tag}: WRONGTYPE")
    except redis.exceptions.ResponseError as e:
        assert str(e).startswith("WRONGTYPE"), (tag, str(e))


def pipelines(r, protocol):
    tag = f"RESP{protocol}"
    # A plain pipeline: every reply, in order, a failing one in its place.
    pipe = r.pipeline(transaction=False)
    pipe.set(k("p1"), "1").incr(k("p1")).get(k("p1")).lpush(k("p1"), "x").get(k("missing"))
    replies = pipe.execute(raise_on_error=False)
    assert replies[:3] == [True, 2, b"2"], (tag, replies)
    assert isinstance(replies[3], redis.exceptions.ResponseError), (tag, replies)
    assert replies[4] is None, (tag, replies)

    # MULTI/EXEC: each write's own reply, as applied at the commit, and a
    # read's value as it was read when queued.
    r.set(k("t:seen"), "before")
    pipe = r.pipeline(transaction=True)
    pipe.set(k("t:a"), "1").incrby(k("t:n"), 7).get(k("t:seen")).rpush(k("t:l"), "a", "b")
    pipe.set(k("t:seen"), "after", get=True)
    assert pipe.execute() == [True, 7, b"before", 2, b"before"], tag
    assert r.mget(k("t:a"), k("t:n"), k("t:seen")) == [b"1", b"7", b"after"], tag

    # A command refused while queuing: EXEC applies nothing.
    pipe = r.pipeline(transaction=True)
    pipe.set(k("t:none"), "x").execute_command("NOSUCHCOMMAND")
    try:
        pipe.execute()
        raise AssertionError(f"{tag}: EXEC aborts")
    except (redis.exceptions.ExecAbortError, redis.exceptions.ResponseError):
        pass
    assert r.get(k("t:none")) is None, tag

    # WATCH is refused, saying why (MULTI/EXEC is a gateway transaction).
    pipe = r.pipeline(transaction=True)
    try:
        pipe.watch(k("t:a"))
        raise AssertionError(f"{tag}: WATCH is refused")
    except redis.exceptions.ResponseError as e:
        assert "WATCH" in str(e), (tag, str(e))
    finally:
        pipe.reset()


def main():
    global KEYS
    for protocol in (2, 3):
        KEYS = f"{PREFIX}:{protocol}"
        r = client(protocol)
        commands(r, protocol)
        pipelines(r, protocol)
        r.close()
    # Without AUTH: refused.
    try:
        redis.Redis(host=HOST, port=PORT, protocol=2).get(k("s"))
        raise AssertionError("NOAUTH without a token")
    except redis.exceptions.AuthenticationError:
        pass
    except redis.exceptions.ResponseError as e:
        assert "NOAUTH" in str(e), str(e)
    print("ok")


if __name__ == "__main__":
    main()
