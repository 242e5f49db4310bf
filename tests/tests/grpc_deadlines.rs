//! Every call that runs out of its deadline answers DEADLINE_EXCEEDED,
//! whichever of the server's timers notices first, on a loaded runtime:
//! six slow statements on a four-connection PostgreSQL pool with a 300 ms
//! deadline, while other tasks keep the runtime's workers busy. The calls
//! are made over a bare HTTP/2 connection, so no client-side timer (tonic's
//! client answers CANCELLED "Timeout expired" when its own fires) hides
//! what the server answered.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use omnigate_proto::v1 as pb;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::{TestGateway, request};
use prost::Message as _;

/// One Execute over a fresh HTTP/2 connection with `grpc-timeout`; the
/// `grpc-status` the server answered.
async fn execute_with_deadline(addr: SocketAddr, message: pb::ExecuteRequest) -> String {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let head = http::Request::post(format!("http://{addr}/omnigate.v1.Gateway/Execute"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "300m")
        .body(())
        .unwrap();
    let (response, mut body) = client.send_request(head, false).unwrap();
    let encoded = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + encoded.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(encoded.len()).unwrap());
    frame.put_slice(&encoded);
    body.send_data(frame.freeze(), true).unwrap();
    let response = response.await.unwrap();
    let (parts, mut stream) = response.into_parts();
    // A trailers-only answer carries the status in its headers.
    if let Some(status) = parts.headers.get("grpc-status") {
        return status.to_str().unwrap().to_owned();
    }
    while let Some(data) = stream.data().await {
        let _: Bytes = data.unwrap();
    }
    let trailers = stream.trailers().await.unwrap().unwrap_or_default();
    trailers
        .get("grpc-status")
        .map(|s| s.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_answers_deadline_exceeded_on_a_loaded_runtime() {
    let pg = PgServer::start();
    let gw = TestGateway::with_config(pg.gateway_config_with_pool(4)).await;
    let addr = gw.handle.local_addr();
    // The load: tasks that hold a worker for 40 ms at a time, so a
    // handler may start well after its call arrived, and timers fire late.
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut load = Vec::new();
    for _ in 0..4 {
        let busy = std::sync::Arc::clone(&busy);
        load.push(tokio::spawn(async move {
            while busy.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(40));
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut codes = Vec::new();
    for _round in 0..3 {
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let slow = request("sql", "SELECT pg_sleep(3)", vec![]);
                tokio::spawn(execute_with_deadline(addr, slow))
            })
            .collect();
        for call in calls {
            codes.push(call.await.unwrap());
        }
    }
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    // 4 is DEADLINE_EXCEEDED; 1 (CANCELLED) is what tonic's own timer said.
    assert!(codes.iter().all(|c| c == "4"), "{codes:?}");
}
