//! The journal through its public API: entries round-trip, damage is detected, a replay
//! of anything well-formed ends in actions or an error, never a panic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use names_core::journal::{
    encode_action, encode_input, write_start, Entry, Header, Input, JournalError, Reader, Record,
    RecordedJob, Replayer,
};
use names_core::{
    Action, Chain, Config, ConnId, LookupId, Origin, Payload, Server, Token, UpstreamError, Via,
};
use proptest::prelude::*;

fn sample_header() -> Header {
    Header {
        names_version: "0.1.0".into(),
        workers: 2,
        config: Config {
            budget: Duration::from_millis(1234),
            max_tcp: 7,
            log_queries: true,
            ..Config::default()
        },
        settings: b"upstream = [\"127.0.0.1:53\"]".to_vec(),
        files: vec![("z.zone".into(), "$ORIGIN x.\n".into())],
    }
}

fn read_all(bytes: &[u8]) -> Result<(Header, Vec<String>), JournalError> {
    let mut r = Reader::new(bytes)?;
    let header = r.header().clone();
    let mut out = Vec::new();
    while let Some(e) = r.next_entry()? {
        out.push(format!("{e:?}"));
    }
    Ok((header, out))
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(a.into(), p)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(a.into(), p)),
    ]
}

fn origin() -> impl Strategy<Value = Origin> {
    prop_oneof![
        (0usize..8, addr()).prop_map(|(listener, peer)| Origin::Udp { listener, peer }),
        any::<u64>().prop_map(|c| Origin::Tcp(ConnId(c))),
    ]
}

/// An owned input, borrowed when encoded.
#[derive(Clone, Debug)]
enum Owned {
    Input(u8, Origin, SocketAddr, u64, Vec<u8>, bool),
    Action(u8, Origin, SocketAddr, u64, Vec<u8>, u16),
}

/// An action from its parts (actions do not clone: a lookup's job is the user's type).
fn as_action(k: u8, o: Origin, a: SocketAddr, n: u64, b: &[u8], p: u16) -> Action {
    match k {
        0 => Action::Reply {
            to: o,
            bytes: b.to_vec(),
        },
        1 => Action::SendUpstream {
            token: Token(n),
            to: a,
            via: if p.is_multiple_of(2) {
                Via::Tcp
            } else {
                Via::Udp { local_port: p }
            },
            bytes: b.to_vec(),
        },
        2 => Action::CloseUpstream { token: Token(n) },
        3 => Action::CloseClient { conn: ConnId(n) },
        4 => Action::PauseRead { conn: ConnId(n) },
        5 => Action::ResumeRead { conn: ConnId(n) },
        6 => Action::Lookup {
            id: LookupId(n),
            job: Payload::new(RecordedJob),
        },
        _ => Action::CancelLookup { id: LookupId(n) },
    }
}

fn owned() -> impl Strategy<Value = Owned> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..64);
    let input = (
        0u8..11,
        origin(),
        addr(),
        any::<u64>(),
        bytes.clone(),
        any::<bool>(),
    )
        .prop_map(|(k, o, a, n, b, f)| Owned::Input(k, o, a, n, b, f));
    let action = (0u8..8, origin(), addr(), any::<u64>(), bytes, any::<u16>())
        .prop_map(|(k, o, a, n, b, p)| Owned::Action(k, o, a, n, b, p));
    prop_oneof![input, action]
}

fn as_input(k: u8, o: Origin, a: SocketAddr, n: u64, b: &[u8], f: bool) -> Input<'_> {
    match k {
        0 => Input::Start {
            seed: [n as u8; 32],
        },
        1 => Input::Client { from: o, bytes: b },
        2 => Input::TcpOpen {
            conn: ConnId(n),
            peer: a,
        },
        3 => Input::TcpWritten {
            conn: ConnId(n),
            bytes: n as usize,
        },
        4 => Input::TcpEof { conn: ConnId(n) },
        5 => Input::TcpClosed { conn: ConnId(n) },
        6 => Input::Upstream {
            token: Token(n),
            from: a,
            bytes: b,
        },
        7 => Input::UpstreamError {
            token: Token(n),
            err: if f {
                UpstreamError::Bind
            } else {
                UpstreamError::Io
            },
        },
        8 => Input::Timeout,
        _ => Input::Lookup {
            id: n,
            outcome: f.then_some(b),
        },
    }
}

proptest! {
    #[test]
    fn entries_round_trip(items in proptest::collection::vec((any::<u16>(), any::<u64>(), owned()), 0..24)) {
        let mut out = Vec::new();
        write_start(&mut out, &sample_header());
        let mut expected = Vec::new();
        for (worker, at, item) in &items {
            let at = Duration::from_nanos(*at);
            match item {
                Owned::Input(k, o, a, n, b, f) => {
                    let input = as_input(*k, *o, *a, *n, b, *f);
                    encode_input(&mut out, *worker, at, &input);
                    expected.push(format!("{:?}", Entry { worker: *worker, at, record: Record::Input(input) }));
                }
                Owned::Action(k, o, a, n, b, p) => {
                    encode_action(&mut out, *worker, at, &as_action(*k, *o, *a, *n, b, *p));
                    let action = as_action(*k, *o, *a, *n, b, *p);
                    expected.push(format!("{:?}", Entry { worker: *worker, at, record: Record::Action(action) }));
                }
            }
        }
        let (header, got) = read_all(&out).unwrap();
        prop_assert_eq!(header, sample_header());
        prop_assert_eq!(got, expected);
    }

    /// Any one byte changed, or the file cut anywhere but between entries: an error
    /// (or, for a cut between entries, fewer entries), never a panic.
    #[test]
    fn damage_is_detected(pos in any::<prop::sample::Index>(), flip in 1u8..=255, cut in any::<prop::sample::Index>()) {
        let mut out = Vec::new();
        write_start(&mut out, &sample_header());
        encode_input(&mut out, 1, Duration::from_millis(3), &Input::Client {
            from: Origin::Udp { listener: 0, peer: "127.0.0.1:9".parse().unwrap() },
            bytes: b"hello",
        });
        encode_action(&mut out, 1, Duration::from_millis(3), &Action::CloseUpstream { token: Token(4) });
        let whole = read_all(&out).unwrap().1.len();
        let mut flipped = out.clone();
        let i = pos.index(flipped.len());
        flipped[i] ^= flip;
        prop_assert!(read_all(&flipped).is_err());
        let cut = &out[..cut.index(out.len())];
        if let Ok((_, entries)) = read_all(cut) {
            prop_assert!(entries.len() < whole);
        }
    }
}

proptest! {
    /// Whatever a (well-formed) journal holds, replaying it ends in actions or one
    /// error, never a panic: inputs before a start, unknown workers, hostile times.
    #[test]
    fn replaying_arbitrary_entries_never_panics(
        items in proptest::collection::vec((0u16..3, 0u64..10_000_000_000, owned()), 0..40),
    ) {
        let mut out = Vec::new();
        write_start(&mut out, &sample_header());
        for (worker, at, item) in &items {
            let at = Duration::from_nanos(*at);
            match item {
                Owned::Input(k, o, a, n, b, f) => {
                    encode_input(&mut out, *worker, at, &as_input(*k, *o, *a, *n, b, *f))
                }
                Owned::Action(k, o, a, n, b, p) => {
                    encode_action(&mut out, *worker, at, &as_action(*k, *o, *a, *n, b, *p))
                }
            }
        }
        encode_input(&mut out, 0, Duration::MAX, &Input::Timeout);
        let mut reader = Reader::new(&out[..]).unwrap();
        let mut replayer = Replayer::new(Instant::now(), 2, |_, seed| {
            Server::new(Config::default(), Chain::new(), seed)
        });
        while let Some(entry) = reader.next_entry().unwrap() {
            let _ = replayer.feed(&entry);
            while replayer.next_produced(entry.worker).is_some() {}
        }
    }
}

#[test]
fn wrong_magic_and_version_are_refused() {
    let mut out = Vec::new();
    write_start(&mut out, &sample_header());
    let mut bad = out.clone();
    bad[0] = b'X';
    assert!(Reader::new(&bad[..])
        .err()
        .unwrap()
        .to_string()
        .contains("magic"));
    let mut bad = out.clone();
    bad[8] = 9;
    assert!(Reader::new(&bad[..])
        .err()
        .unwrap()
        .to_string()
        .contains("version"));
    assert!(Reader::new(&[][..]).is_err());
}

#[test]
fn a_huge_length_is_refused_without_allocating_it() {
    let mut out = Vec::new();
    write_start(&mut out, &sample_header());
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut r = Reader::new(&out[..]).unwrap();
    assert!(r.next_entry().err().unwrap().message.contains("limit"));
}
