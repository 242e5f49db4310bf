"""psycopg 3 and asyncpg through the gateway's PostgreSQL-wire front end.

Run by tests/tests/pg_wire/ against a real PostgreSQL engine (`main-db`)
and the embedded SQLite (`main`): python pg_clients.py HOST PORT USER PASSWORD.
Every check is an assert; the script prints `ok` at the end.
"""

import asyncio
import sys

import asyncpg
import psycopg

HOST, PORT, USER, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def dsn(db):
    return f"host={HOST} port={PORT} user={USER} password={PASSWORD} dbname={db} connect_timeout=5"


def psycopg_checks(db):
    with psycopg.connect(dsn(db), autocommit=True) as conn:
        conn.execute("CREATE TABLE py_t (id INTEGER PRIMARY KEY, name TEXT, score DOUBLE PRECISION)")
        # Server-side binding (the extended protocol), text results.
        conn.execute("INSERT INTO py_t VALUES (%s, %s, %s)", (1, "one", 1.5))
        row = conn.execute("SELECT id, name, score FROM py_t WHERE id = %s", (1,)).fetchone()
        assert row == (1, "one", 1.5), (db, row)
        # Binary results, and a statement prepared on the server.
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT id, name FROM py_t WHERE name = %s", ("one",), prepare=True)
            assert cur.fetchall() == [(1, "one")], db
            cur.execute("SELECT id, name FROM py_t WHERE name = %s", ("one",), prepare=True)
            assert cur.fetchall() == [(1, "one")], db
        # A transaction: rolled back, then committed.
        with conn.transaction(force_rollback=True):
            conn.execute("INSERT INTO py_t VALUES (%s, %s, %s)", (2, "two", 2.0))
        with conn.transaction():
            conn.execute("INSERT INTO py_t VALUES (%s, %s, %s)", (3, "three", None))
        ids = [r[0] for r in conn.execute("SELECT id FROM py_t ORDER BY id").fetchall()]
        assert ids == [1, 3], (db, ids)
        # An error keeps the connection usable, with the engine's SQLSTATE.
        try:
            conn.execute("INSERT INTO py_t VALUES (%s, %s, %s)", (1, "dup", 0.0))
            raise AssertionError("a duplicate key was accepted")
        except psycopg.errors.IntegrityError:
            pass
        assert conn.execute("SELECT count(*) FROM py_t").fetchone()[0] == 2, db


def postgres_text_checks():
    """Text results of the extended protocol on PostgreSQL are its own text."""
    with psycopg.connect(dsn("main-db"), autocommit=True) as conn, psycopg.connect(
        dsn("main-db"), autocommit=True
    ) as other:
        # Server-side binding, text results: each cell as PostgreSQL writes
        # it (the gateway's own formatting wrote ".600" and compact jsonb).
        cur = conn.execute(
            "SELECT %s::int4 + 1, TIMESTAMP '2024-01-02 03:04:05.6', "
            "'{\"b\": [1, 2]}'::jsonb, point(1, 2), NULL::text",
            (41,),
        )
        cells = [cur.pgresult.get_value(0, i) for i in range(5)]
        assert cells == [b"42", b"2024-01-02 03:04:05.6", b'{"b": [1, 2]}', b"(1,2)", None], cells
        # A statement prepared while a column was int4 is refused once the
        # column is text (0A000, as PostgreSQL refuses it), not sent as
        # text under an int4 description.
        conn.execute("CREATE TABLE py_alter (a int4)")
        conn.execute("INSERT INTO py_alter VALUES (5)")
        for _ in range(2):
            assert conn.execute("SELECT a FROM py_alter", prepare=True).fetchone() == (5,)
        other.execute("ALTER TABLE py_alter ALTER a TYPE text")
        other.execute("UPDATE py_alter SET a = 'abc'")
        try:
            conn.execute("SELECT a FROM py_alter", prepare=True).fetchone()
            raise AssertionError("a changed result type was sent as described")
        except psycopg.errors.FeatureNotSupported as e:
            assert e.diag.source_function == "RevalidateCachedQuery", e.diag.source_function
        # The same when the cells are the gateway's (a statement that may
        # change the session, set_config, is formatted by the gateway).
        read = "SELECT a, set_config('application_name', 'py', false) FROM py_alter WHERE length(a::text) > %s"
        for _ in range(2):
            assert conn.execute(read, (0,), prepare=True).fetchone() == ("abc", "py")
        other.execute("ALTER TABLE py_alter ALTER a TYPE bytea USING a::bytea")
        try:
            conn.execute(read, (0,), prepare=True).fetchone()
            raise AssertionError("a changed result type was sent as described")
        except psycopg.errors.FeatureNotSupported:
            pass
        # A column of a type of the database's own (described as text),
        # read with no parameters by a statement prepared on the server.
        conn.execute("CREATE TYPE py_mood AS ENUM ('ok', 'sad')")
        for _ in range(3):
            assert conn.execute("SELECT 'sad'::py_mood", prepare=True).fetchone() == ("sad",)


async def asyncpg_checks(db):
    conn = await asyncpg.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=db, timeout=5)
    try:
        await conn.execute("CREATE TABLE apg_t (id INTEGER PRIMARY KEY, name TEXT)")
        await conn.execute("INSERT INTO apg_t VALUES ($1, $2)", 1, "one")
        await conn.executemany("INSERT INTO apg_t VALUES ($1, $2)", [(2, "two"), (3, None)])
        rows = await conn.fetch("SELECT id, name FROM apg_t WHERE id >= $1 ORDER BY id", 2)
        assert [tuple(r) for r in rows] == [(2, "two"), (3, None)], (db, rows)
        statement = await conn.prepare("SELECT name FROM apg_t WHERE id = $1")
        assert await statement.fetchval(1) == "one", db
        async with conn.transaction():
            await conn.execute("INSERT INTO apg_t VALUES ($1, $2)", 4, "four")
        try:
            async with conn.transaction():
                await conn.execute("INSERT INTO apg_t VALUES ($1, $2)", 5, "five")
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        assert await conn.fetchval("SELECT count(*) FROM apg_t") == 4, db
    finally:
        await conn.close()


psycopg_checks("main-db")
psycopg_checks("main")
postgres_text_checks()
asyncio.run(asyncpg_checks("main-db"))
print("ok")
