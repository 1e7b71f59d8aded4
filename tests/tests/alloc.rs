//! The hot paths allocate nothing: a cache hit and a synthesised answer go through the
//! state machine without touching the heap once warmed up (checked by a counting allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use names_core::cache::{Cache, CacheConfig, Store};
use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::{Action, Chain, Config, Forwarder, Server, Synth, SynthRule};
use names_tests::build::*;
use names_tests::drive::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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

// One test in this binary, so no other thread allocates while it counts.
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
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 0..10_000 {
        serve_one(&mut server, 200 + i / 10, &hit);
        serve_one(&mut server, 200 + i / 10, &synth);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(store.stats().hits, 10_100);
    assert_eq!(allocations, 0, "allocations in 20000 hot-path queries");
}
