//! Replying: the resolvers before the one that answered may replace its answer (a cache
//! serving stale data), then the reply is encoded (spliced from a [`Prebuilt`] answer or
//! encoded from records; a zone transfer as several messages), counted, framed for TCP
//! and queued as an [`Action::Reply`].

use std::time::Instant;

use domain::base::iana::OptRcode;

use super::Server;
use crate::action::{Action, Origin, QueryLog};
use crate::message::encode_reply;
use crate::request::Request;
use crate::resolver::{Answer, Context, Query, Resolution};
use crate::tcp::frame_into;
use crate::tsig::ServerSigner;
use crate::wire::{encode_wire_reply, Prebuilt};

impl Server {
    /// Replies with the answer of the resolver at `source` (the chain's length: nobody's),
    /// after the resolvers before it have seen it and had the chance to replace it.
    pub(super) fn answer(
        &mut self,
        now: Instant,
        request: &Request,
        answer: Answer,
        source: usize,
    ) {
        let mut reply = Resolution::Answer(answer);
        for i in (0..source.min(self.chain.len())).rev() {
            let Resolution::Answer(answer) = &reply else {
                break;
            };
            if let Some(r) = self.chain.get_mut(i) {
                if let Some(replacement @ (Resolution::Answer(_) | Resolution::Prebuilt(_))) = r
                    .on_later_answer(
                        &Query::new(request),
                        answer,
                        &mut Context::seeing(now, request),
                    )
                {
                    reply = replacement;
                }
            }
        }
        if request.background {
            return; // a background refresh: the cache has seen the answer, no client waits
        }
        match reply {
            Resolution::Prebuilt(wire) => self.answer_wire(now, request, wire, source),
            Resolution::Answer(answer) => self.answer_records(now, request, answer, source),
            Resolution::Pass | Resolution::Exchange(_) | Resolution::Lookup(_) => {
                unreachable!("only answers replace answers")
            }
        }
    }

    pub(super) fn count_source(
        &mut self,
        now: Instant,
        request: &Request,
        rcode: OptRcode,
        source: usize,
    ) {
        if let Some(n) = self.answers_by_source.get_mut(source) {
            *n += 1;
        }
        if self.config.log_queries {
            self.actions.push_back(Action::Log(QueryLog {
                client: request.client,
                transport: request.origin.transport(),
                qname: request.qname.clone(),
                qtype: request.qtype,
                rcode,
                source: self
                    .chain
                    .get_mut(source)
                    .map_or("none", |r| r.name())
                    .to_string(),
                latency: now.saturating_duration_since(request.received),
            }));
        }
    }

    /// A reply spliced from a cache entry, without re-encoding its records.
    pub(super) fn answer_wire(
        &mut self,
        now: Instant,
        request: &Request,
        wire: Prebuilt,
        source: usize,
    ) {
        if request.background {
            return;
        }
        let rcode = wire.rcode();
        self.count_source(now, request, rcode, source);
        let mut buf = self.take_buffer();
        let truncated = encode_wire_reply(
            request,
            &wire,
            self.recursion_available,
            self.config.edns_udp_size,
            &mut buf,
        );
        if truncated {
            self.stats.truncated += 1;
        }
        let mut signer = request.tsig.clone();
        self.sign(now, &mut signer, &mut buf);
        self.send(
            now,
            request.origin,
            buf,
            Some(request.qtype.to_int()),
            rcode.to_int(),
        );
    }

    pub(super) fn answer_records(
        &mut self,
        now: Instant,
        request: &Request,
        answer: Answer,
        source: usize,
    ) {
        if request.background {
            return;
        }
        let answer = match crate::message::encode_transfer(request, &answer) {
            Some(Ok(mut parts)) => {
                self.count_source(now, request, answer.rcode, source);
                // AXFR over TCP: several framed messages; the last one completes the query.
                // They all count against the connection's buffered bytes, but as one query
                // they are taken whole: a client that reads gets the whole transfer.
                let mut signer = request.tsig.clone();
                for part in &mut parts {
                    self.sign(now, &mut signer, part);
                }
                let last = parts.pop().unwrap_or_default();
                if let Origin::Tcp(conn) = request.origin {
                    if let Some(c) = self.conns.conns.get_mut(&conn) {
                        for part in parts {
                            let mut bytes = Vec::with_capacity(part.len() + 2);
                            if frame_into(&mut bytes, &part).is_ok() {
                                c.unwritten += bytes.len();
                                self.actions.push_back(Action::Reply {
                                    to: request.origin,
                                    bytes,
                                });
                            }
                        }
                    }
                }
                let qtype = Some(request.qtype.to_int());
                return self.send(now, request.origin, last, qtype, answer.rcode.to_int());
            }
            Some(Err(_)) => {
                // A record too big for any message: refuse rather than send a bad frame
                // (counted and logged once, as the SERVFAIL it is).
                self.stats.tcp_oversize += 1;
                Answer::servfail()
            }
            None => answer,
        };
        self.count_source(now, request, answer.rcode, source);
        let answer = &answer;
        let buf = self.take_buffer();
        let mut encoded = encode_reply(
            request,
            answer,
            self.recursion_available,
            self.config.edns_udp_size,
            buf,
        );
        if encoded.truncated {
            self.stats.truncated += 1;
        }
        let mut signer = request.tsig.clone();
        self.sign(now, &mut signer, &mut encoded.bytes);
        let qtype = Some(request.qtype.to_int());
        self.send(
            now,
            request.origin,
            encoded.bytes,
            qtype,
            answer.rcode.to_int(),
        );
    }

    /// Signs the next reply message of a signed request (RFC 8945 5.3); a message with no
    /// room left for the signature becomes an unsigned SERVFAIL.
    fn sign(&mut self, now: Instant, signer: &mut Option<ServerSigner>, message: &mut Vec<u8>) {
        let Some(signer) = signer else { return };
        if signer.sign(message, self.unix_time(now)).is_err() {
            self.stats.tcp_oversize += 1;
            *message = servfail_from(message);
        }
    }

    /// Queues a reply; `qtype` and `rcode` are what it is counted under.
    pub(super) fn send(
        &mut self,
        now: Instant,
        to: Origin,
        bytes: Vec<u8>,
        qtype: Option<u16>,
        rcode: u16,
    ) {
        let bytes = match to {
            Origin::Udp { .. } => bytes,
            Origin::Tcp(conn) => {
                let Some(c) = self.conns.conns.get_mut(&conn) else {
                    self.stats.dropped += 1;
                    return;
                };
                c.in_flight -= 1;
                c.last_active = now;
                if c.paused || c.eof {
                    self.to_pump.push(conn);
                }
                let mut framed = self
                    .buffers
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(bytes.len() + 2));
                if frame_into(&mut framed, &bytes).is_err() {
                    // Not expected: every reply is built within 65535 bytes for TCP.
                    self.stats.tcp_oversize += 1;
                    framed.clear();
                    let _ = frame_into(&mut framed, &servfail_from(&bytes));
                }
                c.unwritten += framed.len();
                self.recycle(bytes);
                framed
            }
        };
        self.stats.replies += 1;
        self.stats.count_query(to.transport(), qtype, rcode);
        self.actions.push_back(Action::Reply { to, bytes });
    }
}

/// A question-only SERVFAIL in place of `reply` (same ID, flags and question).
fn servfail_from(reply: &[u8]) -> Vec<u8> {
    let Ok(msg) = domain::base::Message::from_octets(reply) else {
        return Vec::new();
    };
    let builder = domain::base::MessageBuilder::new_vec();
    match builder.start_answer(&msg, domain::base::iana::Rcode::SERVFAIL) {
        Ok(b) => b.finish(),
        Err(_) => Vec::new(),
    }
}
