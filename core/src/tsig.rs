//! TSIG (RFC 8945): shared-secret keys, and signing and verifying messages with them.
//!
//! A thin layer over `domain`'s TSIG that works on whole wire-format messages
//! (`Vec<u8>`), as the rest of the core does, and takes the time as an argument:
//!
//! - [`Key`]: a named secret for one algorithm, parsed from `NAME:ALGORITHM:BASE64`;
//!   [`KeyRing`]: the keys a server knows, by name.
//! - Client side: [`ClientSigner::sign`] signs a request and keeps what verifies the
//!   answers ([`ClientSigner::verify`], one call per message of an AXFR/IXFR sequence,
//!   then [`ClientSigner::done`]).
//! - Server side: [`verify_request`] checks a received message against a [`KeyRing`]:
//!   unsigned, signed ([`ServerSigner`], which then signs every answer message), or to be
//!   answered with the error reply RFC 8945 5.2 asks for (NOTAUTH with BADKEY, BADSIG or
//!   BADTIME; FORMERR for a misplaced or unreadable TSIG record).
//!
//! TSIG needs wall-clock seconds, and the core only sees `Instant`s: the runtime tells a
//! [`UnixClock`] which Unix time one `Instant` was, and every later time is derived from
//! `Instant`s (`Server::set_unix_time` does it for a server). A simulation sets any time.
//!
//! ```
//! use names_core::tsig::{verify_request, ClientSigner, Key, KeyRing, Verified};
//! use names_core::domain::base::{iana::Rtype, MessageBuilder, Name};
//!
//! let key = Key::parse("xfr-key:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQ=").unwrap();
//! let keys = KeyRing::from_keys(vec![key.clone()]).unwrap();
//! let now = 1_700_000_000;
//!
//! let mut request = MessageBuilder::new_vec().question();
//! request.push((Name::<Vec<u8>>::root(), Rtype::SOA)).unwrap();
//! let mut request = request.finish();
//! let mut client = ClientSigner::sign(&key, &mut request, now).unwrap();
//!
//! let Verified::Signed(mut server) = verify_request(&keys, &request, now) else { panic!() };
//! let mut answer = MessageBuilder::new_vec().start_answer(
//!     &names_core::domain::base::Message::from_octets(&request[..]).unwrap(),
//!     names_core::domain::base::iana::Rcode::NOERROR,
//! ).unwrap().finish();
//! server.sign(&mut answer, now).unwrap();
//! client.verify(&mut answer, now).unwrap();
//! client.done().unwrap();
//! ```

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, Record, ToName};
use domain::dep::octseq::{OctetsBuilder, Truncate};
use domain::rdata::tsig::{Time48, Tsig};
use domain::tsig::{ClientSequence, KeyStore, ServerSequence};

use crate::parse::ConfigError;

pub use domain::base::iana::TsigRcode;
pub use domain::tsig::{Algorithm, KeyName};

/// Splits an operator's `THING[,key=NAME]` into the thing and the key name (the syntax
/// of `--allow-transfer` and `--notify`). `Err` names what is wrong.
pub(crate) fn split_key(text: &str) -> Result<(&str, Option<KeyName>), &'static str> {
    match text.split_once(',') {
        None => Ok((text, None)),
        Some((thing, rest)) => {
            let name = rest
                .strip_prefix("key=")
                .ok_or("expected ,key=NAME after it")?;
            let name = name.parse().map_err(|_| "the key is not a domain name")?;
            Ok((thing, Some(name)))
        }
    }
}

/// A TSIG key: a name, an HMAC algorithm and a shared secret. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Key(Arc<domain::tsig::Key>);

impl Key {
    /// A key from its parts: one-line errors for a bad name or an empty secret.
    pub fn new(name: &str, algorithm: Algorithm, secret: &[u8]) -> Result<Key, ConfigError> {
        let bad = |why: String| ConfigError::new(format!("TSIG key {name:?}: {why}"));
        if secret.is_empty() {
            return Err(bad("the secret is empty".into()));
        }
        let key_name: KeyName = name
            .parse()
            .map_err(|_| bad("the name is not a domain name".into()))?;
        domain::tsig::Key::new(algorithm, secret, key_name, None, None)
            .map(|k| Key(Arc::new(k)))
            .map_err(|e| bad(e.to_string()))
    }

    /// Parses `NAME:ALGORITHM:BASE64`, e.g. `xfr-key:hmac-sha256:c2VjcmV0`. ALGORITHM is
    /// `hmac-sha1`, `hmac-sha256`, `hmac-sha384` or `hmac-sha512` (the `hmac-` may be left
    /// out, any case).
    pub fn parse(text: &str) -> Result<Key, ConfigError> {
        let mut parts = text.splitn(3, ':');
        let (Some(name), Some(algorithm), Some(secret)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(ConfigError::new(format!(
                "--tsig-key {text:?}: expected NAME:ALGORITHM:BASE64"
            )));
        };
        let bad = |why: &str| ConfigError::new(format!("--tsig-key {name}: {why}"));
        let lower = algorithm.to_ascii_lowercase();
        let algorithm = format!("hmac-{}", lower.trim_start_matches("hmac-"))
            .parse::<Algorithm>()
            .map_err(|_| {
                bad(&format!(
                    "unknown algorithm {algorithm:?} (hmac-sha1, hmac-sha256, hmac-sha384 or hmac-sha512)"
                ))
            })?;
        let secret: Vec<u8> = domain::utils::base64::decode(secret.trim())
            .map_err(|_| bad("the secret is not valid base64"))?;
        Key::new(name, algorithm, &secret).map_err(|e| bad(&e.to_string()))
    }

    /// The key's name.
    pub fn name(&self) -> &KeyName {
        self.0.name()
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
}

impl AsRef<domain::tsig::Key> for Key {
    fn as_ref(&self) -> &domain::tsig::Key {
        &self.0
    }
}

/// The keys a server knows, by name (names compare case-insensitively). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Arc<[Key]>,
}

impl KeyRing {
    /// A ring of `keys`; two keys with one name are an error.
    pub fn from_keys(keys: Vec<Key>) -> Result<KeyRing, ConfigError> {
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.name() == key.name()) {
                return Err(ConfigError::new(format!(
                    "--tsig-key {}: given twice",
                    key.name()
                )));
            }
        }
        Ok(KeyRing { keys: keys.into() })
    }

    /// The key named `name`, if known.
    pub fn get(&self, name: &impl ToName) -> Option<&Key> {
        self.keys.iter().find(|k| k.name().name_eq(name))
    }

    /// Whether the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl KeyStore for KeyRing {
    type Key = Key;

    fn get_key<N: ToName>(&self, name: &N, algorithm: Algorithm) -> Option<Key> {
        self.get(name)
            .filter(|k| k.algorithm() == algorithm)
            .cloned()
    }
}

/// Wall-clock time derived from `Instant`s: the Unix time of one `Instant` is given once.
#[derive(Clone, Copy, Debug)]
pub struct UnixClock {
    at: Instant,
    unix_secs: u64,
}

impl UnixClock {
    /// `at` was `unix_secs` seconds after 1970-01-01 UTC.
    pub fn new(at: Instant, unix_secs: u64) -> UnixClock {
        UnixClock { at, unix_secs }
    }

    /// The Unix time, in seconds, at `now`.
    pub fn unix_secs(&self, now: Instant) -> u64 {
        match now.checked_duration_since(self.at) {
            Some(after) => self.unix_secs.saturating_add(after.as_secs()),
            None => self
                .unix_secs
                .saturating_sub(self.at.duration_since(now).as_secs()),
        }
    }
}

/// Why a TSIG operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// An answer that had to be signed was not.
    Unsigned,
    /// The other side does not know the key, or used another one (BADKEY).
    BadKey,
    /// The signature does not verify (BADSIG, or a MAC truncated too far: BADTRUNC).
    BadSig,
    /// The time signed is outside the fudge (BADTIME).
    BadTime,
    /// A misplaced, repeated or unreadable TSIG record, or a message that does not parse.
    Malformed,
    /// The message has no room left for the TSIG record (65,535 bytes).
    NoRoom,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::Unsigned => "TSIG: the answer is not signed",
            Failure::BadKey => "TSIG: BADKEY (unknown or wrong key)",
            Failure::BadSig => "TSIG: BADSIG (the signature does not verify)",
            Failure::BadTime => "TSIG: BADTIME (the clocks differ by more than the fudge)",
            Failure::Malformed => "TSIG: malformed record or message",
            Failure::NoRoom => "TSIG: no room for the signature",
        })
    }
}

impl std::error::Error for Failure {}

impl From<domain::tsig::ValidationError> for Failure {
    fn from(e: domain::tsig::ValidationError) -> Failure {
        use domain::tsig::ValidationError as V;
        match e {
            V::BadAlg | V::BadOther | V::BadKey | V::ServerBadKey => Failure::BadKey,
            V::BadTrunc | V::BadSig | V::ServerBadSig => Failure::BadSig,
            V::BadTime | V::ServerBadTime { .. } => Failure::BadTime,
            V::ServerUnsigned | V::TooManyUnsigned => Failure::Unsigned,
            V::FormErr => Failure::Malformed,
        }
    }
}

/// The client side of a signed exchange: signs the request, then verifies each answer
/// message (one for a query, a sequence for AXFR/IXFR).
#[derive(Clone, Debug)]
pub struct ClientSigner {
    sequence: Box<ClientSequence<Key>>,
}

impl ClientSigner {
    /// Signs `request` (a whole message, without a TSIG record) with `key` at `unix_secs`,
    /// appending the TSIG record.
    pub fn sign(key: &Key, request: &mut Vec<u8>, unix_secs: u64) -> Result<ClientSigner, Failure> {
        let mut builder = resume(request)?;
        let sequence =
            ClientSequence::request(key.clone(), &mut builder, Time48::from_u64(unix_secs))
                .map_err(|_| Failure::NoRoom)?;
        *request = builder.finish().bytes;
        Ok(ClientSigner {
            sequence: Box::new(sequence),
        })
    }

    /// Verifies the next answer message and removes its TSIG record. In a sequence, up to
    /// 99 messages in a row may be unsigned (RFC 8945 5.3.1); the first must be signed.
    pub fn verify(&mut self, answer: &mut Vec<u8>, unix_secs: u64) -> Result<(), Failure> {
        let mut message =
            Message::from_octets(std::mem::take(answer)).map_err(|_| Failure::Malformed)?;
        let result = self
            .sequence
            .answer(&mut message, Time48::from_u64(unix_secs));
        *answer = message.into_octets();
        result?;
        strip_to_counts(answer);
        Ok(())
    }

    /// Checks that the sequence ended on a signed message.
    pub fn done(self) -> Result<(), Failure> {
        Ok(self.sequence.done()?)
    }

    /// The key the request was signed with.
    pub fn key(&self) -> &domain::tsig::Key {
        self.sequence.key()
    }
}

/// A verified signed request: signs every message of its answer, in order (RFC 8945
/// 5.3.1: each message of an AXFR or IXFR is signed).
#[derive(Clone, Debug)]
pub struct ServerSigner {
    sequence: Box<ServerSequence<Key>>,
    /// The request's TSIG time signed and fudge, echoed in an error.
    signed_at: (Time48, u16),
    /// Set by [`ServerSigner::refuse`]: the answer carries this error, unsigned.
    refused: Option<TsigRcode>,
}

impl ServerSigner {
    /// The key the request was signed with (the answer is signed with it too).
    pub fn key(&self) -> &Key {
        self.sequence.wrapped_key()
    }

    /// The bytes the TSIG record adds to each message.
    pub fn room(&self) -> usize {
        usize::from(self.sequence.key().compose_len())
    }

    /// Makes the answer an error of the key (RFC 8945 5.2.2: a known key that may not do
    /// what was asked gets BADKEY, as Knot answers): from now on [`sign`](Self::sign)
    /// adds an unsigned TSIG record with this error and an empty MAC.
    pub fn refuse(&mut self, error: TsigRcode) {
        self.refused = Some(error);
    }

    /// Signs the next answer message (a whole message, without a TSIG record).
    pub fn sign(&mut self, answer: &mut Vec<u8>, unix_secs: u64) -> Result<(), Failure> {
        if let Some(error) = self.refused {
            return self.append_error(answer, error);
        }
        let mut builder = resume(answer)?;
        self.sequence
            .answer(&mut builder, Time48::from_u64(unix_secs))
            .map_err(|_| Failure::NoRoom)?;
        *answer = builder.finish().bytes;
        Ok(())
    }
}

impl ServerSigner {
    fn append_error(&self, answer: &mut Vec<u8>, error: TsigRcode) -> Result<(), Failure> {
        let id = Message::from_octets(&answer[..])
            .map_err(|_| Failure::Malformed)?
            .header()
            .id();
        let key = self.sequence.key();
        let (time_signed, fudge) = self.signed_at;
        let empty: &[u8] = b"";
        let tsig = Tsig::new(
            key.algorithm().to_name(),
            time_signed,
            fudge,
            empty,
            id,
            error,
            empty,
        )
        .map_err(|_| Failure::NoRoom)?;
        let mut builder = resume(answer)?;
        builder
            .push((key.name(), Class::ANY, 0, tsig))
            .map_err(|_| Failure::NoRoom)?;
        *answer = builder.finish().bytes;
        Ok(())
    }
}

/// What a server makes of a received message's TSIG record.
#[derive(Clone, Debug)]
pub enum Verified {
    /// No TSIG record.
    Unsigned,
    /// Signed with a known key, correctly, in time.
    Signed(ServerSigner),
    /// To be answered with this error reply and nothing else (RFC 8945 5.2): NOTAUTH with
    /// the TSIG error BADKEY or BADSIG (unsigned), BADTIME (signed), or FORMERR.
    Rejected {
        /// The TSIG error (FORMERR's code for a malformed record).
        error: TsigRcode,
        /// The reply to send.
        reply: Vec<u8>,
    },
}

/// Checks a received request's TSIG record against `keys` at `unix_secs`.
pub fn verify_request(keys: &KeyRing, request: &[u8], unix_secs: u64) -> Verified {
    let Ok(original) = Message::from_octets(request) else {
        return reject(request, Rcode::FORMERR, None);
    };
    // domain says FORMERR both for a misplaced record and for a wrong MAC; a record that
    // is the last and only TSIG, readable, tells them apart: then it is BADSIG.
    let well_placed = sole_last_tsig(&original);
    // RFC 8945 4.2: class ANY, TTL 0 (domain leaves them out of its checks).
    if well_placed
        && last_tsig(&original).is_some_and(|t| t.class() != Class::ANY || t.ttl().as_secs() != 0)
    {
        return reject(request, Rcode::FORMERR, None);
    }
    let mut message = match Message::from_octets(request.to_vec()) {
        Ok(m) => m,
        Err(_) => return reject(request, Rcode::FORMERR, None),
    };
    match ServerSequence::request(keys, &mut message, Time48::from_u64(unix_secs)) {
        Ok(None) => Verified::Unsigned,
        Ok(Some(sequence)) => Verified::Signed(ServerSigner {
            sequence: Box::new(sequence),
            signed_at: last_tsig(&original).map_or((Time48::from_u64(unix_secs), 300), |t| {
                (t.data().time_signed(), t.data().fudge())
            }),
            refused: None,
        }),
        Err(e) => {
            let error = match e.error() {
                TsigRcode::FORMERR if well_placed => TsigRcode::BADSIG,
                TsigRcode::BADTRUNC => TsigRcode::BADSIG,
                other => other,
            };
            if error == TsigRcode::BADTIME {
                // Signed with the key, as RFC 8945 5.2.3 asks: domain builds it.
                let built = e
                    .build_message(&original, MessageBuilder::new_vec())
                    .map(|b| b.finish());
                return match built {
                    Ok(reply) => Verified::Rejected { error, reply },
                    Err(_) => reject(request, Rcode::SERVFAIL, None),
                };
            }
            if error == TsigRcode::FORMERR || !well_placed {
                return reject(request, Rcode::FORMERR, None);
            }
            reject(request, Rcode::NOTAUTH, Some(error))
        }
    }
}

/// An error reply: the question echoed, and for a TSIG error the request's TSIG record
/// with an empty MAC and that error (an unsigned reply, RFC 8945 5.2.1 and 5.2.2).
fn reject(request: &[u8], rcode: Rcode, error: Option<TsigRcode>) -> Verified {
    let fallback = || {
        let mut reply = request.get(..12).map(<[u8]>::to_vec).unwrap_or_default();
        if reply.len() == 12 {
            reply[2] |= 0x80;
            reply[3] = (reply[3] & 0xf0) | (rcode.to_int() & 0x0f);
            reply[4..].fill(0);
        }
        reply
    };
    let reply = (|| {
        let msg = Message::from_octets(request).ok()?;
        let mut reply = MessageBuilder::new_vec()
            .start_answer(&msg, rcode)
            .ok()?
            .additional();
        if let Some(error) = error {
            let tsig = last_tsig(&msg)?;
            let data = tsig.data();
            let echoed = Tsig::new(
                data.algorithm(),
                data.time_signed(),
                data.fudge(),
                b"" as &[u8],
                msg.header().id(),
                error,
                b"" as &[u8],
            )
            .ok()?;
            reply
                .push((tsig.owner(), tsig.class(), tsig.ttl(), echoed))
                .ok()?;
        }
        Some(reply.finish())
    })()
    .unwrap_or_else(fallback);
    Verified::Rejected {
        error: error.unwrap_or(TsigRcode::FORMERR),
        reply,
    }
}

type ParsedTsig<'a> =
    Record<domain::base::ParsedName<&'a [u8]>, Tsig<&'a [u8], domain::base::ParsedName<&'a [u8]>>>;

/// The message's last additional record, if it is a readable TSIG record.
fn last_tsig<'a>(msg: &'a Message<&'a [u8]>) -> Option<ParsedTsig<'a>> {
    let last = msg.additional().ok()?.last()?.ok()?;
    last.to_record::<Tsig<_, _>>().ok()?
}

/// Whether the message holds exactly one TSIG record, readable, last in the message.
fn sole_last_tsig(msg: &Message<&[u8]>) -> bool {
    let Ok(sections) = msg.sections() else {
        return false;
    };
    let (_, answer, authority, additional) = sections;
    let count = |section: domain::base::message::RecordSection<'_, &[u8]>| {
        section
            .filter(|rr| rr.as_ref().is_ok_and(|rr| rr.rtype() == Rtype::TSIG))
            .count()
    };
    count(answer) + count(authority) + count(additional) == 1 && last_tsig(msg).is_some()
}

/// Cuts the bytes after the records the header counts (what a removed TSIG leaves).
fn strip_to_counts(message: &mut Vec<u8>) {
    if let Some(end) = crate::request::wire_len(message) {
        message.truncate(end);
    }
}

/// A message builder that continues `message` as it is, so a TSIG record can be added
/// after it was encoded.
fn resume(
    message: &mut Vec<u8>,
) -> Result<domain::base::message_builder::AdditionalBuilder<Resumed>, Failure> {
    if Message::from_octets(&message[..]).is_err() {
        return Err(Failure::Malformed);
    }
    let target = Resumed {
        bytes: std::mem::take(message),
        keep: true,
    };
    let mut builder = MessageBuilder::from_target(target).map_err(|_| Failure::NoRoom)?;
    builder.set_push_limit(crate::tcp::MAX_MESSAGE);
    Ok(builder.additional())
}

/// A builder target holding a finished message. `MessageBuilder::from_target` empties
/// its target and writes a blank header; this one keeps the message through that (its
/// first truncate and append), so the builder continues the message.
struct Resumed {
    bytes: Vec<u8>,
    keep: bool,
}

impl OctetsBuilder for Resumed {
    type AppendError = Infallible;

    fn append_slice(&mut self, slice: &[u8]) -> Result<(), Infallible> {
        if std::mem::take(&mut self.keep) {
            return Ok(()); // the blank header: the message's own stays
        }
        self.bytes.extend_from_slice(slice);
        Ok(())
    }
}

impl Truncate for Resumed {
    fn truncate(&mut self, len: usize) {
        if !self.keep {
            self.bytes.truncate(len);
        }
    }
}

impl AsRef<[u8]> for Resumed {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsMut<[u8]> for Resumed {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
}

impl domain::base::wire::Composer for Resumed {}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::base::iana::Rtype;
    use domain::base::Name;

    const NOW: u64 = 1_700_000_000;

    fn key(text: &str) -> Key {
        Key::parse(text).unwrap()
    }

    fn query() -> Vec<u8> {
        let mut q = MessageBuilder::new_vec();
        q.header_mut().set_id(77);
        let mut q = q.question();
        q.push((Name::<Vec<u8>>::root(), Rtype::AXFR)).unwrap();
        q.finish()
    }

    fn answer_to(request: &[u8], n: u8) -> Vec<u8> {
        let msg = Message::from_octets(request).unwrap();
        let mut b = MessageBuilder::new_vec()
            .start_answer(&msg, Rcode::NOERROR)
            .unwrap();
        b.header_mut().set_id(77);
        let mut b = b.answer();
        b.push((
            Name::<Vec<u8>>::root(),
            60,
            domain::rdata::A::new([192, 0, 2, n].into()),
        ))
        .unwrap();
        b.finish()
    }

    fn rejected(v: Verified) -> (TsigRcode, Vec<u8>) {
        match v {
            Verified::Rejected { error, reply } => (error, reply),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn keys_parse_with_one_line_errors() {
        let k = key("Xfr.Key:HMAC-SHA512:c2VjcmV0");
        assert_eq!(k.algorithm(), Algorithm::Sha512);
        assert_eq!(k.name().to_string(), "Xfr.Key");
        assert_eq!(key("k:sha1:c2VjcmV0").algorithm(), Algorithm::Sha1);
        for (text, why) in [
            ("k:hmac-md5:c2VjcmV0", "unknown algorithm"),
            ("k:hmac-sha256:not base64!", "not valid base64"),
            ("k:hmac-sha256:", "secret is empty"),
            ("k:hmac-sha256", "expected NAME:ALGORITHM:BASE64"),
        ] {
            let e = Key::parse(text).unwrap_err().to_string();
            assert!(e.contains(why) && !e.contains('\n'), "{text}: {e}");
        }
        let twice = KeyRing::from_keys(vec![key("a:sha256:c2VjcmV0"), key("A.:sha1:c2VjcmV0")]);
        assert!(twice.unwrap_err().to_string().contains("given twice"));
    }

    #[test]
    fn a_signed_sequence_verifies_message_by_message() {
        let k = key("xfr:hmac-sha256:c2VjcmV0LXNlY3JldA==");
        let ring = KeyRing::from_keys(vec![k.clone()]).unwrap();
        let mut request = query();
        let mut client = ClientSigner::sign(&k, &mut request, NOW).unwrap();
        let Verified::Signed(mut server) = verify_request(&ring, &request, NOW + 10) else {
            panic!("signed")
        };
        for n in 0..3 {
            let mut answer = answer_to(&request, n);
            let plain = answer.clone();
            server.sign(&mut answer, NOW + 10).unwrap();
            assert!(answer.len() > plain.len());
            client.verify(&mut answer, NOW + 11).unwrap();
            assert_eq!(answer, plain, "the TSIG record is removed once verified");
        }
        client.done().unwrap();
    }

    #[test]
    fn a_tampered_answer_or_a_wrong_key_fails() {
        let k = key("xfr:hmac-sha256:c2VjcmV0LXNlY3JldA==");
        let ring = KeyRing::from_keys(vec![k.clone()]).unwrap();
        let mut request = query();
        let mut client = ClientSigner::sign(&k, &mut request, NOW).unwrap();
        let Verified::Signed(mut server) = verify_request(&ring, &request, NOW) else {
            panic!("signed")
        };
        let mut answer = answer_to(&request, 1);
        server.sign(&mut answer, NOW).unwrap();
        let last_rdata_byte = 12 + 5 + 11 + 3; // root question, then the A record's last octet
        answer[last_rdata_byte] ^= 1;
        assert_eq!(client.verify(&mut answer, NOW), Err(Failure::BadSig));
        let mut unsigned = answer_to(&request, 1);
        assert_eq!(client.verify(&mut unsigned, NOW), Err(Failure::Unsigned));
    }

    #[test]
    fn server_errors_are_badkey_badsig_badtime() {
        let k = key("xfr:hmac-sha256:c2VjcmV0LXNlY3JldA==");
        let ring = KeyRing::from_keys(vec![k.clone()]).unwrap();
        let check = |reply: &[u8], rcode: Rcode, error: TsigRcode| {
            let msg = Message::from_octets(reply).unwrap();
            assert_eq!(msg.header().rcode(), rcode);
            assert_eq!(msg.header().id(), 77);
            let tsig = last_tsig(&msg).expect("a TSIG record");
            assert_eq!(tsig.data().error(), error);
        };

        // A key the server does not know.
        let mut request = query();
        ClientSigner::sign(&key("other:hmac-sha256:c2VjcmV0"), &mut request, NOW).unwrap();
        let (error, reply) = rejected(verify_request(&ring, &request, NOW));
        assert_eq!(error, TsigRcode::BADKEY);
        check(&reply, Rcode::NOTAUTH, TsigRcode::BADKEY);

        // The right name, the wrong secret.
        let mut request = query();
        ClientSigner::sign(&key("xfr:hmac-sha256:d3Jvbmc="), &mut request, NOW).unwrap();
        let (error, reply) = rejected(verify_request(&ring, &request, NOW));
        assert_eq!(error, TsigRcode::BADSIG);
        check(&reply, Rcode::NOTAUTH, TsigRcode::BADSIG);

        // A known key, an hour late: a signed BADTIME the client can verify.
        let mut request = query();
        let mut client = ClientSigner::sign(&k, &mut request, NOW).unwrap();
        let (error, mut reply) = rejected(verify_request(&ring, &request, NOW + 3600));
        assert_eq!(error, TsigRcode::BADTIME);
        check(&reply, Rcode::NOTAUTH, TsigRcode::BADTIME);
        assert_eq!(client.verify(&mut reply, NOW), Err(Failure::BadTime));

        // No TSIG at all; a TSIG record that is not last.
        assert!(matches!(
            verify_request(&ring, &query(), NOW),
            Verified::Unsigned
        ));
        let mut request = query();
        ClientSigner::sign(&k, &mut request, NOW).unwrap();
        let mut b = resume(&mut request).unwrap();
        b.push((
            Name::<Vec<u8>>::root(),
            60,
            domain::rdata::A::new([192, 0, 2, 1].into()),
        ))
        .unwrap();
        let misplaced = b.finish().bytes;
        let (error, reply) = rejected(verify_request(&ring, &misplaced, NOW));
        assert_eq!(error, TsigRcode::FORMERR);
        assert_eq!(
            Message::from_octets(&reply[..]).unwrap().header().rcode(),
            Rcode::FORMERR
        );
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let ring = KeyRing::from_keys(vec![key("xfr:hmac-sha256:c2VjcmV0")]).unwrap();
        let mut request = query();
        ClientSigner::sign(&key("xfr:hmac-sha256:c2VjcmV0"), &mut request, NOW).unwrap();
        for cut in 0..request.len() {
            let _ = verify_request(&ring, &request[..cut], NOW);
            let mut flipped = request.clone();
            flipped[cut] ^= 0xff;
            let _ = verify_request(&ring, &flipped, NOW);
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test's one clock read
    fn the_clock_derives_unix_time_from_instants() {
        let t0 = Instant::now();
        let clock = UnixClock::new(t0 + std::time::Duration::from_secs(5), 1000);
        assert_eq!(
            clock.unix_secs(t0 + std::time::Duration::from_secs(65)),
            1060
        );
        assert_eq!(clock.unix_secs(t0), 995);
    }
}
