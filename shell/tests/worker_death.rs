//! A worker that dies ends the whole server with an error naming it, never a silently
//! smaller server (the audit saw worker 1 die unnoticed while worker 0 kept serving).

use std::net::{SocketAddr, UdpSocket};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use names_core::domain::base::{MessageBuilder, Name, Rtype};
use names_core::{Chain, Config, Context, Query, Resolution, Resolver};
use names_shell::{Hooks, Listeners};

/// Panics on every query: a stand-in for any bug a worker might hit.
struct Broken;

impl Resolver for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn resolve(&mut self, _: &Query<'_>, _: &mut Context) -> Resolution {
        panic!("resolver bug")
    }
}

/// Passes every query (to nobody: REFUSED).
struct Fine;

impl Resolver for Fine {
    fn name(&self) -> &str {
        "fine"
    }
    fn resolve(&mut self, _: &Query<'_>, _: &mut Context) -> Resolution {
        Resolution::Pass
    }
}

#[test]
fn a_panicking_second_worker_ends_the_server_with_one_error() {
    let listeners = Listeners::bind(&["127.0.0.1:0".parse().unwrap()], 2).unwrap();
    let addr: SocketAddr = listeners.addresses()[0];
    // Worker 1's chain panics on any query; worker 0's is fine. (Each worker builds its
    // chain on its own thread, named after it.)
    let make_chain = || match std::thread::current().name() {
        Some("names-worker-1") => Chain::new().with(Broken),
        _ => Chain::new().with(Fine),
    };
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let result = listeners.run_with(Config::default(), Arc::new(make_chain), Hooks::default());
        let _ = done_tx.send(result);
    });
    let mut builder = MessageBuilder::new_vec();
    builder.header_mut().set_id(1);
    builder.header_mut().set_rd(true);
    let mut question = builder.question();
    let name: Name<Vec<u8>> = "www.example.com".parse().unwrap();
    question.push((name, Rtype::A)).unwrap();
    let query = question.finish();
    // Queries from many source ports: SO_REUSEPORT hands some to the second worker.
    let deadline = Instant::now() + Duration::from_secs(10);
    let result = loop {
        assert!(
            Instant::now() < deadline,
            "the server went on without its second worker"
        );
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let _ = client.send_to(&query, addr);
        if let Ok(result) = done.recv_timeout(Duration::from_millis(20)) {
            break result;
        }
    };
    let err = result.expect_err("a dead worker is an error").to_string();
    assert!(err.starts_with("worker 1: panicked at "), "{err}");
    assert!(err.ends_with(": resolver bug"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
