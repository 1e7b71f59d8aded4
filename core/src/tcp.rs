//! TCP: RFC 7766 length framing (shared by client connections and upstream TCP tries),
//! and the client connection table with pipelining limits and idle deadlines.

use crate::fasthash::FastMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::action::ConnId;

/// Reassembles 2-byte-length-prefixed messages from arbitrarily chunked bytes.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
}

/// A frame declared with length zero: no DNS message is that short.
#[derive(Debug, PartialEq, Eq)]
pub struct EmptyFrame;

impl Framer {
    /// Appends bytes read from the connection (any chunking).
    pub fn push(&mut self, bytes: &[u8]) {
        self.reset_if_consumed();
        self.buf.extend_from_slice(bytes);
    }

    /// Appends at most what completes the frame being read (its prefix, then its
    /// message) and returns how many bytes of `bytes` it took. Fed this way, a framer
    /// never holds more than one frame of the largest size (65535 + 2 bytes).
    pub fn push_some(&mut self, bytes: &[u8]) -> usize {
        self.reset_if_consumed();
        let pending = self.buffered();
        let want = match self.frame_len() {
            Some(total) => total.saturating_sub(pending),
            None => 2 - pending, // the prefix is not complete: fewer than 2 bytes are in
        };
        let n = want.min(bytes.len());
        self.buf.extend_from_slice(&bytes[..n]);
        n
    }

    /// The next complete message, if one has fully arrived.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, EmptyFrame> {
        let Some(total) = self.frame_len() else {
            self.compact();
            return Ok(None);
        };
        if total == 2 {
            return Err(EmptyFrame);
        }
        if self.buffered() < total {
            self.compact();
            return Ok(None);
        }
        let begin = self.start + 2;
        self.start += total;
        Ok(Some(&self.buf[begin..self.start]))
    }

    /// The whole length (prefix included) of the frame being read, once its prefix is in.
    fn frame_len(&self) -> Option<usize> {
        match self.buf.get(self.start..self.start + 2)? {
            &[hi, lo] => Some(2 + usize::from(u16::from_be_bytes([hi, lo]))),
            _ => None,
        }
    }

    fn reset_if_consumed(&mut self) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Bytes held in memory: those not yet returned plus any returned but not yet dropped.
    pub fn held(&self) -> usize {
        self.buf.len()
    }

    /// Whether a complete frame (or an empty one) is waiting.
    pub fn has_frame(&self) -> bool {
        self.frame_len()
            .is_some_and(|total| self.buffered() >= total)
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// The longest message a 2-byte length prefix can carry.
pub const MAX_MESSAGE: usize = 65535;

/// A message longer than [`MAX_MESSAGE`]: it cannot be framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong;

/// Prefixes a message with its 2-byte length. A message longer than 65,535 bytes
/// gives an empty vector: nothing, rather than a length that lies about the bytes.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 2);
    let _ = frame_into(&mut out, message);
    out
}

/// Appends `message` with its 2-byte length prefix to `out` (a reused buffer). A message
/// longer than [`MAX_MESSAGE`] appends nothing: a wrong length would desync the stream.
pub fn frame_into(out: &mut Vec<u8>, message: &[u8]) -> Result<(), TooLong> {
    let len = u16::try_from(message.len()).map_err(|_| TooLong)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Ok(())
}

/// One open client connection.
#[derive(Debug)]
pub(crate) struct ClientConn {
    pub peer: SocketAddr,
    pub framer: Framer,
    /// Queries read but not yet answered.
    pub in_flight: usize,
    /// Last time a complete query arrived or a reply left: the idle clock.
    pub last_active: Instant,
    /// Reading is paused: `in_flight` reached the pipelining limit, or `unwritten`
    /// the buffering limit.
    pub paused: bool,
    /// Bytes of replies handed to the runtime and not yet reported written.
    pub unwritten: usize,
    /// The client shut down its sending side: nothing more will be read.
    pub eof: bool,
}

/// Open client connections by id.
#[derive(Debug, Default)]
pub(crate) struct ClientConns {
    pub conns: FastMap<ConnId, ClientConn>,
    /// Open connections per client address.
    pub per_ip: FastMap<IpAddr, usize>,
}

impl ClientConns {
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Open connections from `ip`.
    pub fn count_from(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    pub fn insert(&mut self, conn: ConnId, c: ClientConn) {
        *self.per_ip.entry(c.peer.ip()).or_default() += 1;
        if let Some(old) = self.conns.insert(conn, c) {
            self.forget_ip(old.peer.ip());
        }
    }

    pub fn remove(&mut self, conn: ConnId) -> Option<ClientConn> {
        let c = self.conns.remove(&conn)?;
        self.forget_ip(c.peer.ip());
        Some(c)
    }

    fn forget_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_across_chunks() {
        let mut f = Framer::default();
        let wire = [frame(b"hello"), frame(b"dns")].concat();
        for chunk in wire.chunks(3) {
            f.push(chunk);
        }
        assert_eq!(f.next_frame().unwrap(), Some(&b"hello"[..]));
        assert_eq!(f.next_frame().unwrap(), Some(&b"dns"[..]));
        assert_eq!(f.next_frame().unwrap(), None);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn push_some_takes_one_frame_at_a_time() {
        let mut f = Framer::default();
        let mut wire = [frame(b"hello"), frame(b"dns")].concat();
        wire.extend([0xff, 0xff]);
        wire.extend(std::iter::repeat_n(7, 100_000));
        let mut rest = &wire[..];
        let mut got = Vec::new();
        while !rest.is_empty() {
            let n = f.push_some(rest);
            rest = &rest[n..];
            assert!(f.held() <= 65537, "{} bytes held", f.held());
            while let Ok(Some(m)) = f.next_frame() {
                got.push(m.to_vec());
            }
        }
        assert_eq!(got[..2], [b"hello".to_vec(), b"dns".to_vec()]);
        assert_eq!(got[2].len(), 65535);
    }

    #[test]
    fn partial_and_empty() {
        let mut f = Framer::default();
        f.push(&[0, 5, b'a']);
        assert_eq!(f.next_frame().unwrap(), None);
        assert_eq!(f.buffered(), 3);
        assert!(!f.has_frame());
        let mut g = Framer::default();
        g.push(&[0, 0]);
        assert!(g.has_frame());
        assert_eq!(g.next_frame(), Err(EmptyFrame));
    }

    #[test]
    fn an_unframeable_message_writes_nothing() {
        let mut out = vec![1];
        assert_eq!(
            frame_into(&mut out, &vec![0; MAX_MESSAGE + 1]),
            Err(TooLong)
        );
        assert_eq!(out, vec![1], "no length that lies about the bytes");
        assert!(frame(&vec![0; 70_000]).is_empty());
        assert_eq!(frame(&vec![0; MAX_MESSAGE]).len(), MAX_MESSAGE + 2);
    }
}
