//! Who may call over RESP: AUTH, read-only, statement rules, grants.

use super::{Backend, Raw, V, bulk, connect, err, gateway, ok, principals, resp, try_connect};

#[tokio::test]
async fn auth_read_only_and_deny_rules_hold_over_resp() {
    for backend in Backend::both() {
        let on = backend.name();
        let mut config = backend.config();
        config.principals = principals();
        let (_gw, addr) = gateway(config).await;

        let mut raw = Raw::connect(addr).await;
        raw.send(&resp(&[b"GET", b"k"])).await;
        raw.send(&resp(&[b"PING"])).await;
        raw.send(&resp(&[b"AUTH", b"not-a-token"])).await;
        raw.send(&resp(&[b"AUTH", b"reader", b"app-token"])).await;
        raw.send(&resp(&[b"AUTH", b"app-token"])).await;
        raw.send(&resp(&[b"SET", b"k", b"1"])).await;
        raw.send(&resp(&[b"RESET"])).await;
        raw.send(&resp(&[b"GET", b"k"])).await;
        let lines = raw.lines(8).await;
        assert_eq!(lines[0], "-NOAUTH Authentication required.", "{on}");
        assert_eq!(lines[1], "-NOAUTH Authentication required.", "{on}");
        let wrong = "-WRONGPASS invalid username-password pair or user is disabled.";
        assert_eq!([&lines[2], &lines[3]], [wrong, wrong], "{on}");
        assert_eq!(
            [&lines[4], &lines[5], &lines[6]],
            ["+OK", "+OK", "+RESET"],
            "{on}"
        );
        assert_eq!(
            lines[7], "-NOAUTH Authentication required.",
            "{on}: RESET forgets AUTH"
        );

        // The token alone, the principal and its token, HELLO 3 AUTH.
        let mut app = connect(addr, Some(("", "app-token")), false).await;
        assert_eq!(ok(&mut app, &[b"GET", b"k"]).await, bulk(b"1"), "{on}");
        let mut named = connect(addr, Some(("app", "app-token")), false).await;
        assert_eq!(ok(&mut named, &[b"GET", b"k"]).await, bulk(b"1"), "{on}");
        let mut three = connect(addr, Some(("app", "app-token")), true).await;
        assert_eq!(ok(&mut three, &[b"GET", b"k"]).await, bulk(b"1"), "{on}");
        assert!(
            try_connect(addr, Some(("app", "reader-token")), false)
                .await
                .is_err()
        );
        // A principal whose grant leaves out the engine is refused at AUTH.
        let mut raw = Raw::connect(addr).await;
        raw.send(&resp(&[b"AUTH", b"elsewhere-token"])).await;
        raw.send(&resp(&[b"GET", b"k"])).await;
        let lines = raw.lines(2).await;
        assert!(
            lines[0].starts_with("-NOPERM") && lines[0].contains("principals.elsewhere.engines"),
            "{on}: {lines:?}"
        );
        assert_eq!(lines[1], "-NOAUTH Authentication required.", "{on}");

        // A read-only principal reads and may not write.
        let mut reader = connect(addr, Some(("reader", "reader-token")), false).await;
        assert_eq!(ok(&mut reader, &[b"GET", b"k"]).await, bulk(b"1"), "{on}");
        let (code, line) = err(&mut reader, &[b"SET", b"k", b"2"]).await;
        assert_eq!(code, "NOPERM", "{on}: {line}");
        assert!(line.contains("principals.reader.read_only"), "{on}: {line}");
        // In a pipeline too: each command its own reply.
        let replies: Vec<V> = redis::pipe()
            .cmd("GET")
            .arg("k")
            .cmd("INCR")
            .arg("k")
            .cmd("GET")
            .arg("k")
            .ignore_errors()
            .query_async(&mut reader)
            .await
            .unwrap();
        assert_eq!(replies[0], bulk(b"1"), "{on}");
        assert!(
            matches!(&replies[1], V::ServerError(e) if e.code() == "NOPERM"),
            "{on}: {replies:?}"
        );
        assert_eq!(replies[2], bulk(b"1"), "{on}");
        // Nor in a transaction: refused when queued, and EXEC applies
        // nothing.
        assert_eq!(ok(&mut reader, &[b"MULTI"]).await, V::Okay);
        let (code, _) = err(&mut reader, &[b"SET", b"k", b"3"]).await;
        assert_eq!(code, "NOPERM", "{on}");
        let (code, _) = err(&mut reader, &[b"EXEC"]).await;
        assert_eq!(code, "EXECABORT", "{on}");
        assert_eq!(ok(&mut app, &[b"GET", b"k"]).await, bulk(b"1"), "{on}");

        // A statement rule, matched on the command, names itself.
        let mut guarded = connect(addr, Some(("guarded", "guarded-token")), false).await;
        let (code, line) = err(&mut guarded, &[b"SET", b"secret:x", b"1"]).await;
        assert_eq!(code, "NOPERM", "{on}: {line}");
        assert!(line.contains("no-secrets"), "{on}: {line}");
        assert_eq!(
            ok(&mut guarded, &[b"SET", b"public:x", b"1"]).await,
            V::Okay
        );
        assert_eq!(ok(&mut app, &[b"GET", b"secret:x"]).await, V::Nil, "{on}");
        // An admin command is refused for a principal without the grant.
        let (code, _) = err(&mut app, &[b"FLUSHALL"]).await;
        assert_eq!(code, "NOPERM", "{on}");
    }
}
