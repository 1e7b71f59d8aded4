//! Cache hits are compressed (issue 14): owners other than the question name point at
//! names already in the reply, so a hit is no larger than the upstream's reply, and TC is
//! decided on the compressed size.

use std::net::Ipv4Addr;
use std::sync::Arc;

use names_core::cache::{Cache, CacheConfig, Store};
use names_core::domain::base::iana::{Class, Rcode, Rtype};
use names_core::domain::base::{Message, MessageBuilder, Name, StaticCompressor, ToName};
use names_core::domain::rdata::{Cname, A};
use names_core::{Chain, Config, Forwarder, Server};
use names_tests::build::*;
use names_tests::drive::*;
use names_tests::parse::{a_addrs, message};

const TARGET: &str = "a-rather-long-target-name.example.net";

/// The upstream's reply: the question name CNAME [`TARGET`], which has `n` addresses.
fn chain_reply(query: &[u8], n: u8) -> Vec<u8> {
    let q = Message::from_octets(query).unwrap();
    let owner: Name<Vec<u8>> = q.sole_question().unwrap().qname().to_name();
    let target: Name<Vec<u8>> = TARGET.parse().unwrap();
    let b = MessageBuilder::from_target(StaticCompressor::new(Vec::new())).unwrap();
    let mut ans = b.start_answer(&q, Rcode::NOERROR).unwrap();
    ans.header_mut().set_ra(true);
    ans.push((&owner, Class::IN, 300, Cname::new(target.clone())))
        .unwrap();
    for i in 1..=n {
        ans.push((&target, Class::IN, 300, A::new(Ipv4Addr::new(192, 0, 2, i))))
            .unwrap();
    }
    ans.additional().finish().into_target()
}

/// A server with a cache whose entry for `www.example.com` A is the chain with `n`
/// addresses (fetched over TCP as a client without EDNS would get it); the upstream's
/// reply size.
fn cached(n: u8) -> (Server, usize) {
    let store = Arc::new(Store::new(100, 1));
    let chain = Chain::new()
        .with(Cache::new(store, CacheConfig::default()))
        .with(Forwarder::new(vec![upstream_addr(1)]));
    let mut server = Server::new(Config::default(), chain, SEED);
    server.handle_client(
        at(0),
        udp(5000),
        &query("www.example.com", Rtype::A, 1, true, Some(4096)),
    );
    let sent = sends(&drain(&mut server));
    let reply = chain_reply(&sent[0].message, n);
    server.handle_upstream(at(1), sent[0].token, sent[0].to, &reply);
    drain(&mut server);
    (server, reply.len())
}

/// A cache hit for a client without EDNS (512 bytes).
fn hit(server: &mut Server, id: u16) -> Vec<u8> {
    server.handle_client(
        at(10),
        udp(5001),
        &query("WWW.example.com", Rtype::A, id, true, None),
    );
    let actions = drain(server);
    assert!(sends(&actions).is_empty(), "a cache hit");
    replies(&actions).pop().expect("a reply").1
}

#[test]
fn a_chain_hit_is_compressed_and_fits_where_uncompressed_it_would_not() {
    // 26 addresses: 495 bytes compressed, over 1,100 with every owner written out.
    let (mut server, upstream_len) = cached(26);
    let bytes = hit(&mut server, 7);
    assert!(
        bytes.len() <= upstream_len,
        "{} > {upstream_len}",
        bytes.len()
    );
    let msg = message(&bytes);
    assert!(!msg.header().tc(), "fits 512 bytes compressed");
    assert_eq!(msg.header().id(), 7);
    assert_eq!(msg.header_counts().ancount(), 27);
    assert_eq!(a_addrs(&msg).len(), 26);
    let owners: Vec<String> = msg
        .answer()
        .unwrap()
        .map(|rr| rr.unwrap().owner().to_string())
        .collect();
    assert_eq!(owners[0], "WWW.example.com", "the question's case");
    assert!(owners[1..].iter().all(|o| o == TARGET), "{owners:?}");
}

#[test]
fn a_chain_hit_too_big_even_compressed_is_truncated_cleanly() {
    let (mut server, _) = cached(40);
    let bytes = hit(&mut server, 8);
    assert!(bytes.len() <= 512);
    let msg = message(&bytes);
    assert!(msg.header().tc() && msg.header().qr());
    assert_eq!(msg.header().id(), 8);
    let counts = msg.header_counts();
    assert_eq!(
        (
            counts.qdcount(),
            counts.ancount(),
            counts.nscount(),
            counts.arcount()
        ),
        (1, 0, 0, 0)
    );
    assert_eq!(
        msg.sole_question().unwrap().qname().to_string(),
        "WWW.example.com"
    );
    // A client with EDNS gets it all, compressed.
    server.handle_client(
        at(20),
        udp(5002),
        &query("www.example.com", Rtype::A, 9, true, Some(1232)),
    );
    let (_, bytes) = replies(&drain(&mut server)).pop().unwrap();
    let msg = message(&bytes);
    assert!(!msg.header().tc());
    assert_eq!(a_addrs(&msg).len(), 40);
}
