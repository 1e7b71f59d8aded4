//! Client TCP connections: pipelining, idle timeouts, limits, framing.

use super::*;

fn tcp_server(config: Config, ups: &[SocketAddr]) -> Server {
    let mut s = server(config, ups);
    s.handle_tcp_open(at(0), CONN, tcp_peer());
    s
}

#[test]
fn pipelined_queries_in_one_chunk_and_across_chunks() {
    let queries: Vec<Vec<u8>> = (0..5u16)
        .map(|i| {
            query(
                &format!("workstation{i}.example"),
                Rtype::A,
                100 + i,
                true,
                None,
            )
        })
        .collect();
    let stream: Vec<u8> = queries.iter().flat_map(|q| frame(q)).collect();
    for chunk_size in [stream.len(), 1, 2, 3, 13, 50] {
        let mut server = tcp_server(Config::default(), &[]);
        let mut got = Vec::new();
        for chunk in stream.chunks(chunk_size) {
            server.handle_client(at(1), Origin::Tcp(CONN), chunk);
            got.extend(replies(&drain(&mut server)));
        }
        assert_eq!(got.len(), 5, "chunk {chunk_size}");
        for (i, (to, bytes)) in got.iter().enumerate() {
            assert_eq!(*to, Origin::Tcp(CONN));
            let msg = message(unframe(bytes));
            assert_eq!(msg.header().id(), 100 + i as u16);
            assert_eq!(a_addrs(&msg), vec![Ipv4Addr::new(172, 0, 2, i as u8)]);
        }
    }
    // Forwarded pipelined queries are answered in the upstream's order.
    let mut server = tcp_server(Config::default(), &[upstream_addr(1)]);
    let stream: Vec<u8> = (0..3u16)
        .flat_map(|i| {
            frame(&query(
                &format!("h{i}.example"),
                Rtype::A,
                200 + i,
                true,
                None,
            ))
        })
        .collect();
    server.handle_client(at(1), Origin::Tcp(CONN), &stream);
    let sent = sends(&drain(&mut server));
    assert_eq!(sent.len(), 3);
    let mut ids = Vec::new();
    for s in sent.iter().rev() {
        let up = upstream_reply(&s.message, Rcode::NOERROR, &[UP_IP], false);
        let r = replies(&upstream(&mut server, 5, s, s.to, &up));
        ids.push(message(unframe(&r[0].1)).header().id());
    }
    assert_eq!(ids, vec![202, 201, 200]);
}

#[test]
fn idle_connection_closed_after_tcp_idle() {
    let idle = Duration::from_millis(2000);
    let config = Config {
        tcp_idle: idle,
        ..Config::default()
    };
    // Never used: closed at exactly tcp_idle.
    let mut server = tcp_server(config.clone(), &[]);
    assert!(timeout(&mut server, 1999).is_empty());
    assert_eq!(
        timeout(&mut server, 2000),
        vec![Action::CloseClient { conn: CONN }]
    );
    assert_eq!(server.open_connections(), 0);

    // A query at 1.5 s resets the idle clock: closed at 3.5 s.
    let mut server = tcp_server(config.clone(), &[]);
    server.handle_client(
        at(1500),
        Origin::Tcp(CONN),
        &frame(&query("workstation1.x", Rtype::A, 1, true, None)),
    );
    assert_eq!(replies(&drain(&mut server)).len(), 1);
    assert!(timeout(&mut server, 2000).is_empty());
    assert!(timeout(&mut server, 3499).is_empty());
    assert_eq!(
        timeout(&mut server, 3500),
        vec![Action::CloseClient { conn: CONN }]
    );

    // A query in flight keeps it open past tcp_idle; closed tcp_idle after the reply.
    let mut server = tcp_server(config.clone(), &[upstream_addr(1)]);
    server.handle_client(
        at(100),
        Origin::Tcp(CONN),
        &frame(&query("fwd.example", Rtype::A, 1, true, None)),
    );
    let mut all = drain(&mut server);
    let mut t = 100;
    let mut steps = 0;
    while let Some(next) = server.poll_timeout() {
        steps += 1;
        assert!(steps < 50);
        t = next.duration_since(epoch()).as_millis() as u64;
        server.handle_timeout(next);
        let actions = drain(&mut server);
        if actions.contains(&Action::CloseClient { conn: CONN }) {
            break;
        }
        all.extend(actions);
    }
    let r = replies(&all);
    assert_eq!(r.len(), 1, "SERVFAIL at the budget before the close");
    assert_eq!(message(unframe(&r[0].1)).header().rcode(), Rcode::SERVFAIL);
    assert_eq!(t, 100 + 5000 + 2000, "closed tcp_idle after the reply");

    // A partial frame is not activity.
    let mut server = tcp_server(config, &[]);
    server.handle_client(at(1000), Origin::Tcp(CONN), &[0, 30, 1, 2]);
    assert!(drain(&mut server).is_empty());
    assert_eq!(
        timeout(&mut server, 2000),
        vec![Action::CloseClient { conn: CONN }]
    );
}

#[test]
fn connections_beyond_max_tcp_are_closed_at_once() {
    let config = Config {
        max_tcp: 2,
        ..Config::default()
    };
    let mut server = server(config, &[]);
    server.handle_tcp_open(at(0), ConnId(1), tcp_peer());
    server.handle_tcp_open(at(0), ConnId(2), tcp_peer());
    assert!(drain(&mut server).is_empty());
    server.handle_tcp_open(at(0), ConnId(3), tcp_peer());
    assert_eq!(
        drain(&mut server),
        vec![Action::CloseClient { conn: ConnId(3) }]
    );
    assert_eq!(server.open_connections(), 2);
    // The others keep being served, and closing one makes room.
    server.handle_client(
        at(1),
        Origin::Tcp(ConnId(2)),
        &frame(&query("workstation5.x", Rtype::A, 5, true, None)),
    );
    assert_eq!(replies(&drain(&mut server)).len(), 1);
    // UDP is unaffected.
    assert_eq!(
        replies(&ask_at(
            &mut server,
            1,
            &query("workstation5.x", Rtype::A, 5, true, None)
        ))
        .len(),
        1
    );
    server.handle_tcp_closed(at(2), ConnId(1));
    server.handle_tcp_open(at(2), ConnId(4), tcp_peer());
    assert!(drain(&mut server).is_empty());
    assert_eq!(server.open_connections(), 2);
}

#[test]
fn pipelining_limit_pauses_then_resumes_reading() {
    let config = Config {
        max_pipelined: 2,
        ..Config::default()
    };
    let mut server = tcp_server(config, &[upstream_addr(1)]);
    let stream: Vec<u8> = (0..5u16)
        .flat_map(|i| {
            frame(&query(
                &format!("p{i}.example"),
                Rtype::A,
                300 + i,
                true,
                None,
            ))
        })
        .collect();
    server.handle_client(at(1), Origin::Tcp(CONN), &stream);
    let actions = drain(&mut server);
    assert_eq!(sends(&actions).len(), 2, "only max_pipelined read");
    assert!(actions.contains(&Action::PauseRead { conn: CONN }));
    let mut queue = sends(&actions);
    let mut ids = Vec::new();
    let mut resumed = false;
    let mut steps = 0;
    while let Some(s) = (!queue.is_empty()).then(|| queue.remove(0)) {
        steps += 1;
        assert!(steps < 20);
        let up = upstream_reply(&s.message, Rcode::NOERROR, &[UP_IP], false);
        let actions = upstream(&mut server, 2, &s, s.to, &up);
        for r in replies(&actions) {
            ids.push(message(unframe(&r.1)).header().id());
        }
        if resumed {
            assert!(
                sends(&actions).is_empty(),
                "nothing left unread once resumed"
            );
        }
        queue.extend(sends(&actions));
        assert!(
            !actions.contains(&Action::PauseRead { conn: CONN }),
            "paused once"
        );
        resumed |= actions.contains(&Action::ResumeRead { conn: CONN });
        assert!(server.pending_queries() <= 2);
    }
    assert!(resumed, "reading resumes once the buffered queries drained");
    assert_eq!(ids, vec![300, 301, 302, 303, 304]);
}

#[test]
fn zero_length_frame_closes_the_connection() {
    for prefix in [
        vec![],
        frame(&query("workstation1.x", Rtype::A, 1, true, None)),
    ] {
        let mut server = tcp_server(Config::default(), &[]);
        let stream = [
            prefix.clone(),
            vec![0, 0],
            frame(&query("workstation2.x", Rtype::A, 2, true, None)),
        ]
        .concat();
        server.handle_client(at(1), Origin::Tcp(CONN), &stream);
        let actions = drain(&mut server);
        assert_eq!(
            replies(&actions).len(),
            usize::from(!prefix.is_empty()),
            "queries before it answered"
        );
        assert_eq!(actions.last(), Some(&Action::CloseClient { conn: CONN }));
        assert_eq!(server.open_connections(), 0);
        // Bytes after the close are ignored.
        server.handle_client(
            at(2),
            Origin::Tcp(CONN),
            &frame(&query("workstation3.x", Rtype::A, 3, true, None)),
        );
        assert!(drain(&mut server).is_empty());
    }
}

#[test]
fn closed_connection_gets_no_late_reply() {
    let mut server = tcp_server(Config::default(), &[upstream_addr(1)]);
    server.handle_client(
        at(1),
        Origin::Tcp(CONN),
        &frame(&query("a.example", Rtype::A, 1, true, None)),
    );
    let s = sends(&drain(&mut server)).remove(0);
    server.handle_tcp_closed(at(2), CONN);
    let up = upstream_reply(&s.message, Rcode::NOERROR, &[UP_IP], false);
    let actions = upstream(&mut server, 3, &s, s.to, &up);
    assert!(replies(&actions).is_empty());
    assert_eq!(closes(&actions), vec![s.token]);
    assert_eq!(server.pending_queries(), 0);
    assert_eq!(server.open_upstream_tokens(), 0);
}
