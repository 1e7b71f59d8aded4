//! Client TCP connections: the caps on opening them, reading queries under the
//! pipelining and buffered-reply limits (RFC 7766 6.2.3), half-close, and closing idle
//! ones (sooner under pressure).

use std::net::SocketAddr;
use std::time::Instant;

use super::Server;
use crate::action::{Action, ConnId, Origin};
use crate::tcp::ClientConn;
use crate::timers::Wake;

/// Under pressure (this many tenths of `max_tcp` open), idle connections get this share
/// of `tcp_idle` (as Unbound and NSD shorten theirs), so idle clients cannot hold the slots.
const PRESSURE_TENTHS: usize = 9;
const PRESSURE_IDLE_DIVISOR: u32 = 10;

impl Server {
    /// A client TCP connection was accepted. It is closed at once (an
    /// [`Action::CloseClient`]) when `max_tcp` connections are open, or
    /// `max_tcp_per_client` from the same address.
    pub fn handle_tcp_open(&mut self, now: Instant, conn: ConnId, peer: SocketAddr) {
        let now = self.tick(now);
        if self.conns.len() >= self.config.max_tcp {
            self.stats.tcp_refused += 1;
            self.actions.push_back(Action::CloseClient { conn });
            return;
        }
        if self.conns.count_from(peer.ip()) >= self.config.max_tcp_per_client {
            self.stats.tcp_per_client_refused += 1;
            self.actions.push_back(Action::CloseClient { conn });
            return;
        }
        self.conns.insert(
            conn,
            ClientConn {
                peer,
                framer: Default::default(),
                in_flight: 0,
                last_active: now,
                paused: false,
                unwritten: 0,
                eof: false,
            },
        );
        let idle = self.idle_timeout();
        self.timers.arm(now + idle, Wake::TcpIdle(conn));
        if self.under_pressure() && !self.sweep_armed {
            self.sweep_armed = true;
            self.timers.arm(now + idle, Wake::TcpSweep);
        }
    }

    /// A client TCP connection was reset or failed. Replies still owed to it are dropped.
    pub fn handle_tcp_closed(&mut self, now: Instant, conn: ConnId) {
        self.tick(now);
        self.conns.remove(conn);
    }

    /// The client shut down its sending side of a TCP connection (a read returned end of
    /// stream; RFC 7766 6.2.x). Every complete query read before is still answered; the
    /// core closes the connection ([`Action::CloseClient`]) once none is in flight and
    /// every reply was reported written.
    pub fn handle_tcp_eof(&mut self, now: Instant, conn: ConnId) {
        let now = self.tick(now);
        if let Some(c) = self.conns.conns.get_mut(&conn) {
            c.eof = true;
            self.pump(now, conn);
        }
        self.pump_drained(now);
    }

    /// `bytes` of the replies to a TCP connection were written to its socket. Until then
    /// they count against the connection's `max_tcp_buffered`.
    pub fn handle_tcp_written(&mut self, now: Instant, conn: ConnId, bytes: usize) {
        let now = self.tick(now);
        if let Some(c) = self.conns.conns.get_mut(&conn) {
            c.unwritten = c.unwritten.saturating_sub(bytes);
            c.last_active = now; // a client that reads is not idle
            self.pump(now, conn);
        }
        self.pump_drained(now);
    }

    /// Bytes of replies to `conn` not yet reported written (0 for an unknown connection).
    pub fn tcp_unwritten(&self, conn: ConnId) -> usize {
        self.conns.conns.get(&conn).map_or(0, |c| c.unwritten)
    }

    /// Bytes read from `conn` and not yet taken as queries (0 for an unknown connection).
    pub fn tcp_unread(&self, conn: ConnId) -> usize {
        self.conns
            .conns
            .get(&conn)
            .map_or(0, |c| c.framer.buffered())
    }

    /// Whether no TCP connection has a query in flight, a complete query read but not yet
    /// taken, or a reply not reported written: a runtime shutting down may close them all.
    pub fn tcp_settled(&self) -> bool {
        // `all` does not depend on the iteration order.
        #[allow(clippy::disallowed_methods)]
        self.conns
            .conns
            .values()
            .all(|c| c.in_flight == 0 && c.unwritten == 0 && !c.framer.has_frame())
    }

    /// Open client TCP connections from `ip`.
    pub fn connections_from(&self, ip: std::net::IpAddr) -> usize {
        self.conns.count_from(ip)
    }

    /// Open client TCP connections.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Reads complete frames from a TCP connection while under the pipelining limit and
    /// the buffered-reply limit; closes a half-closed connection once it is all answered.
    pub(super) fn pump(&mut self, now: Instant, conn: ConnId) {
        loop {
            let Some(c) = self.conns.conns.get_mut(&conn) else {
                return;
            };
            // Replies not yet written count against the connection: a client that does not
            // read gets no more queries taken, so its replies cannot pile up (RFC 7766 6.2.3).
            if c.in_flight >= self.config.max_pipelined
                || c.unwritten > self.config.max_tcp_buffered
            {
                if !c.paused {
                    c.paused = true;
                    self.actions.push_back(Action::PauseRead { conn });
                }
                return;
            }
            let message = match c.framer.next_frame() {
                Ok(Some(m)) => m.to_vec(),
                Ok(None) => break,
                Err(_) => {
                    self.close_client(conn);
                    return;
                }
            };
            c.in_flight += 1;
            c.last_active = now;
            self.on_message(now, Origin::Tcp(conn), &message);
        }
        if let Some(c) = self.conns.conns.get_mut(&conn) {
            if c.paused {
                c.paused = false;
                self.actions.push_back(Action::ResumeRead { conn });
            }
            if c.eof && c.in_flight == 0 && c.unwritten == 0 && !c.framer.has_frame() {
                self.close_client(conn);
            }
        }
    }

    pub(super) fn pump_drained(&mut self, now: Instant) {
        while let Some(conn) = self.to_pump.pop() {
            self.pump(now, conn);
        }
    }

    pub(super) fn close_client(&mut self, conn: ConnId) {
        if self.conns.remove(conn).is_some() {
            self.actions.push_back(Action::CloseClient { conn });
        }
    }

    pub(super) fn under_pressure(&self) -> bool {
        self.conns.len() * 10 >= self.config.max_tcp * PRESSURE_TENTHS
    }

    /// The idle timeout now: shorter under pressure.
    pub(super) fn idle_timeout(&self) -> std::time::Duration {
        if self.under_pressure() {
            self.config.tcp_idle / PRESSURE_IDLE_DIVISOR
        } else {
            self.config.tcp_idle
        }
    }

    pub(super) fn check_idle(&mut self, now: Instant, conn: ConnId) {
        let idle = self.idle_timeout();
        let Some(c) = self.conns.conns.get(&conn) else {
            return;
        };
        let due = c.last_active + idle;
        if c.in_flight == 0 && due <= now {
            self.stats.tcp_idle_closed += 1;
            self.close_client(conn);
        } else {
            let at = if c.in_flight > 0 { now + idle } else { due };
            self.timers.arm(at, Wake::TcpIdle(conn));
        }
    }

    /// Armed when the pressure began: closes every connection idle for the short timeout
    /// (even if closing the first ones already ended the pressure), and runs again while
    /// the pressure lasts (the per-connection timers were armed with the long timeout).
    pub(super) fn sweep_idle(&mut self, now: Instant) {
        self.sweep_armed = false;
        let idle = self.config.tcp_idle / PRESSURE_IDLE_DIVISOR;
        // Sorted, so the closes come in the same order on every run.
        #[allow(clippy::disallowed_methods)]
        let mut idle_conns: Vec<ConnId> = self
            .conns
            .conns
            .iter()
            .filter(|(_, c)| c.in_flight == 0 && c.last_active + idle <= now)
            .map(|(id, _)| *id)
            .collect();
        idle_conns.sort_unstable();
        for conn in idle_conns {
            self.stats.tcp_idle_closed += 1;
            self.close_client(conn);
        }
        if self.under_pressure() {
            self.sweep_armed = true;
            let idle = self.idle_timeout();
            self.timers.arm(now + idle, Wake::TcpSweep);
        }
    }
}
