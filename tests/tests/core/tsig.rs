//! TSIG (RFC 8945) through the `Server`: signed requests verified before any resolver,
//! every reply message signed, the errors of RFC 8945 5.2, and transfer rules that name a
//! key. The Unix time is whatever the test says (`Server::set_unix_time`).

// Tests take one real instant as the base time the core is given.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use names_core::domain::base::iana::{Class, Opcode, Rcode, Rtype, TsigRcode};
use names_core::domain::base::{Message, ParsedName};
use names_core::domain::rdata::tsig::Tsig;
use names_core::tsig::{ClientSigner, Failure, Key, KeyRing};
use names_core::zone::{load_zone, Snapshot, TransferRule, ZoneResolver, ZoneSet};
use names_core::{Action, Chain, Config, ConnId, Origin, Server};
use names_tests::build::{frame, name, query_wire, unframe, Flags};

const UNIX: u64 = 1_800_000_000;

fn key(text: &str) -> Key {
    Key::parse(text).unwrap()
}

fn xfr() -> Key {
    key("xfr:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQ=")
}

fn other() -> Key {
    key("other:hmac-sha512:b3RoZXItc2VjcmV0")
}

fn server(rules: &[&str], t0: Instant) -> Server {
    let mut text =
        String::from("$ORIGIN big.test.\n@ 3600 SOA ns h 42 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n");
    for i in 0..1500 {
        text.push_str(&format!("host{i} TXT \"record number {i}\"\n"));
    }
    let zone = load_zone("big", &text, &mut |p, _| Err(format!("no include {p}"))).unwrap();
    let rules: Vec<TransferRule> = rules
        .iter()
        .map(|r| TransferRule::parse(r).unwrap())
        .collect();
    let resolver =
        ZoneResolver::new(Snapshot::new(ZoneSet::new(vec![zone]).unwrap())).allow_transfer(rules);
    let mut s = Server::new(Config::default(), Chain::new().with(resolver), [3; 32]);
    s.set_tsig_keys(KeyRing::from_keys(vec![xfr(), other()]).unwrap());
    s.set_unix_time(t0, UNIX);
    s
}

fn request(qtype: Rtype, signed_with: Option<&Key>, unix: u64) -> (Vec<u8>, Option<ClientSigner>) {
    let mut q = query_wire(
        &name("big.test"),
        qtype,
        Class::IN,
        4242,
        Flags {
            rd: false,
            cd: false,
            opcode: Opcode::QUERY,
        },
        None,
    );
    let signer = signed_with.map(|k| ClientSigner::sign(k, &mut q, unix).unwrap());
    (q, signer)
}

/// Every reply message to one query over a fresh TCP connection.
fn over_tcp(s: &mut Server, at: Instant, q: &[u8]) -> Vec<Vec<u8>> {
    let conn = ConnId(5);
    s.handle_tcp_open(at, conn, "127.0.0.1:5353".parse().unwrap());
    s.handle_client(at, Origin::Tcp(conn), &frame(q));
    let mut out = Vec::new();
    while let Some(action) = s.poll_action() {
        if let Action::Reply { bytes, .. } = action {
            out.push(unframe(&bytes).to_vec());
        }
    }
    s.handle_tcp_closed(at, conn);
    out
}

fn tsig_error(reply: &[u8]) -> Option<TsigRcode> {
    let msg = Message::from_octets(reply).unwrap();
    let last = msg.additional().ok()?.last()?.ok()?;
    let tsig = last.to_record::<Tsig<_, ParsedName<_>>>().ok()??;
    Some(tsig.data().error())
}

fn rcode(reply: &[u8]) -> Rcode {
    Message::from_octets(reply).unwrap().header().rcode()
}

#[test]
fn a_keyed_rule_transfers_only_to_requests_signed_with_its_key() {
    let t0 = Instant::now();
    let mut s = server(&["127.0.0.0/8,key=xfr"], t0);

    // Signed with the rule's key: every message signed, each verifies in order.
    let (q, signer) = request(Rtype::AXFR, Some(&xfr()), UNIX);
    let mut signer = signer.unwrap();
    let replies = over_tcp(&mut s, t0, &q);
    assert!(replies.len() > 2, "{} messages", replies.len());
    let mut records = 0;
    for mut reply in replies {
        assert_eq!(rcode(&reply), Rcode::NOERROR);
        signer
            .verify(&mut reply, UNIX)
            .expect("each message signed");
        records += Message::from_octets(&reply[..])
            .unwrap()
            .header_counts()
            .ancount();
    }
    signer.done().unwrap();
    assert_eq!(records, 1500 + 4);

    // Unsigned: NOTAUTH, no records; signed with another known key: NOTAUTH with the
    // TSIG error BADKEY (as Knot).
    let (q, _) = request(Rtype::AXFR, None, UNIX);
    let replies = over_tcp(&mut s, t0, &q);
    assert_eq!(replies.len(), 1);
    assert_eq!(rcode(&replies[0]), Rcode::NOTAUTH);
    assert_eq!(tsig_error(&replies[0]), None);
    let (q, signer) = request(Rtype::IXFR, Some(&other()), UNIX);
    let mut replies = over_tcp(&mut s, t0, &q);
    assert_eq!(replies.len(), 1);
    assert_eq!(rcode(&replies[0]), Rcode::NOTAUTH);
    assert_eq!(tsig_error(&replies[0]), Some(TsigRcode::BADKEY));
    assert_eq!(
        signer.unwrap().verify(&mut replies[0], UNIX),
        Err(Failure::BadKey)
    );
    // The same key may still ask what no rule limits (here: the SOA), signed.
    let (q, signer) = request(Rtype::SOA, Some(&other()), UNIX);
    let mut reply = over_tcp(&mut s, t0, &q).remove(0);
    assert_eq!(rcode(&reply), Rcode::NOERROR);
    signer.unwrap().verify(&mut reply, UNIX).unwrap();
    assert_eq!(
        s.stats().tsig_rejected,
        0,
        "both verified: the rule refused them"
    );
}

#[test]
fn bad_signatures_get_the_errors_of_rfc_8945() {
    let t0 = Instant::now();
    let mut s = server(&["127.0.0.0/8"], t0);
    let unknown = key("stranger:hmac-sha256:c2VjcmV0");
    let forged = key("xfr:hmac-sha256:Zm9yZ2Vk");
    for (k, unix, error) in [
        (&unknown, UNIX, TsigRcode::BADKEY),
        (&forged, UNIX, TsigRcode::BADSIG),
        (&xfr(), UNIX - 301, TsigRcode::BADTIME),
        (&xfr(), UNIX + 301, TsigRcode::BADTIME),
    ] {
        let (q, signer) = request(Rtype::SOA, Some(k), unix);
        let mut replies = over_tcp(&mut s, t0, &q);
        assert_eq!(replies.len(), 1);
        assert_eq!(rcode(&replies[0]), Rcode::NOTAUTH, "{error}");
        assert_eq!(tsig_error(&replies[0]), Some(error));
        assert_eq!(
            Message::from_octets(&replies[0][..])
                .unwrap()
                .header_counts()
                .ancount(),
            0
        );
        let verified = signer.unwrap().verify(&mut replies[0], unix);
        let expected = match error {
            TsigRcode::BADKEY => Failure::BadKey,
            TsigRcode::BADSIG => Failure::BadSig,
            _ => Failure::BadTime,
        };
        assert_eq!(verified, Err(expected));
    }
    assert_eq!(s.stats().tsig_rejected, 4);

    // Within the fudge, later in the server's own time: answered, signed.
    let later = t0 + Duration::from_secs(250);
    let (q, signer) = request(Rtype::SOA, Some(&xfr()), UNIX + 250);
    let mut reply = over_tcp(&mut s, later, &q).remove(0);
    assert_eq!(rcode(&reply), Rcode::NOERROR);
    signer.unwrap().verify(&mut reply, UNIX + 250).unwrap();
    // Over UDP too, room left for the signature.
    let (q, signer) = request(Rtype::SOA, Some(&xfr()), UNIX);
    s.handle_client(
        t0,
        names_tests::drive::udp_from("127.0.0.1:5353".parse().unwrap()),
        &q,
    );
    let Some(Action::Reply { mut bytes, .. }) = s.poll_action() else {
        panic!("a reply")
    };
    assert!(bytes.len() <= 512);
    signer.unwrap().verify(&mut bytes, UNIX).unwrap();
}

#[test]
fn hostile_signed_requests_never_panic_or_pass_unverified() {
    let t0 = Instant::now();
    let mut s = server(&["127.0.0.0/8,key=xfr"], t0);
    let (q, _) = request(Rtype::AXFR, Some(&xfr()), UNIX);
    for i in 12..q.len() {
        let mut bad = q.clone();
        bad[i] ^= 0x5a;
        for reply in over_tcp(&mut s, t0, &bad) {
            let ancount =
                Message::from_octets(&reply[..]).map_or(0, |m| m.header_counts().ancount());
            assert!(
                ancount == 0,
                "byte {i}: a damaged request was answered with records"
            );
        }
    }
}
