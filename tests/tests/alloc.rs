//! The hot paths allocate nothing: a cache hit and a synthesised answer go through the
//! state machine without touching the heap once warmed up (checked by a counting allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use names_core::cache::{Cache, CacheConfig, Store};
use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::{Action, Chain, Config, Forwarder, Server, Synth, SynthRule};
use names_tests::build::*;
use names_tests::drive::*;

struct Counting;

thread_local! {
    /// Allocations made by this thread: the test harness's own threads (output capture,
    /// the runner) never count, so the figure is the state machine's alone.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down has no counter left, and needs none.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sends `query` and hands the reply buffer back, as a runtime does.
fn serve_one(server: &mut Server, ms: u64, query: &[u8]) -> usize {
    server.handle_client(at(ms), udp(5353), query);
    let mut replies = 0;
    while let Some(action) = server.poll_action() {
        if let Action::Reply { bytes, .. } = action {
            replies += 1;
            server.recycle(bytes);
        }
    }
    replies
}

#[test]
fn cache_hits_and_synth_answers_do_not_allocate() {
    let store = Arc::new(Store::new(100, 1));
    let chain = Chain::new()
        .with(Synth::new(vec![
            SynthRule::parse("workstation=172.0.2").unwrap()
        ]))
        .with(Cache::new(store.clone(), CacheConfig::default()))
        .with(Forwarder::new(vec![upstream_addr(1)]));
    let mut server = Server::new(Config::default(), chain, SEED);

    // Fill the cache with one forwarded answer.
    let q = query("www.example.com", Rtype::A, 1, true, Some(1232));
    server.handle_client(at(0), udp(5353), &q);
    let sent = sends(&drain(&mut server));
    let reply = upstream_reply(
        &sent[0].message,
        Rcode::NOERROR,
        &[std::net::Ipv4Addr::new(192, 0, 2, 1)],
        false,
    );
    server.handle_upstream(at(1), sent[0].token, sent[0].to, &reply);
    drain(&mut server);

    let hit = query("WWW.example.com", Rtype::A, 2, true, Some(1232));
    let synth = query("workstation42.example.com", Rtype::A, 3, true, None);
    // Warm up: buffers, arena, counters.
    for i in 0..100 {
        assert_eq!(serve_one(&mut server, 10 + i, &hit), 1);
        assert_eq!(serve_one(&mut server, 10 + i, &synth), 1);
    }
    let before = allocations();
    for i in 0..10_000 {
        serve_one(&mut server, 200 + i / 10, &hit);
        serve_one(&mut server, 200 + i / 10, &synth);
    }
    let allocations = allocations() - before;
    assert_eq!(store.stats().hits, 10_100);
    assert_eq!(allocations, 0, "allocations in 20000 hot-path queries");
}
