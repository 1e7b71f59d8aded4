//! Memory per cached answer: live heap bytes (plus an allocator overhead of 16 bytes per
//! live block) held by the cache per entry, after 100k distinct names went through a
//! server's forwarder into its cache.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use names_core::cache::{Cache, CacheConfig, Store};
use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::{Chain, Config, Forwarder, Server};
use names_tests::build::*;
use names_tests::drive::*;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap in use, counting 16 bytes of allocator bookkeeping per live block.
fn heap() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed) + 16 * LIVE_BLOCKS.load(Ordering::Relaxed)
}

#[test]
fn a_cached_name_costs_at_most_300_bytes() {
    const NAMES: usize = 100_000;
    let store = Arc::new(Store::new(NAMES, 1));
    let chain = Chain::new()
        .with(Cache::new(
            store.clone(),
            CacheConfig {
                size: NAMES,
                ..CacheConfig::default()
            },
        ))
        .with(Forwarder::new(vec![upstream_addr(1)]));
    let mut server = Server::new(Config::default(), chain, SEED);
    let mut fill = |from: usize, to: usize| {
        for i in from..to {
            let name = format!("host{i}.bench.test");
            server.handle_client(
                at(0),
                udp(5353),
                &query(&name, Rtype::A, i as u16, true, Some(1232)),
            );
            let sent = sends(&drain(&mut server));
            let reply = upstream_reply(
                &sent[0].message,
                Rcode::NOERROR,
                &[Ipv4Addr::new(192, 0, 2, 1)],
                false,
            );
            server.handle_upstream(at(1), sent[0].token, sent[0].to, &reply);
            drain(&mut server);
        }
    };
    fill(0, 1_000); // warm up the server's own tables
    let before = heap();
    let entries_before = store.len();
    fill(1_000, NAMES);
    let per_entry = (heap() - before) as f64 / (store.len() - entries_before) as f64;
    println!(
        "cache: {per_entry:.0} bytes per cached name ({} entries)",
        store.len()
    );
    assert_eq!(store.len(), NAMES);
    assert!(per_entry <= 300.0, "{per_entry:.0} bytes per cached name");
}
