//! The secondary machine: per zone, the SOA timers, the serial check and the transfer,
//! one exchange at a time, every one bounded in time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{MessageBuilder, Name, ToName};
use domain::rdata::AllRecordData;

use super::apply::{full_zone, incremental};
use super::transfer::{soa_serial, Asked, Failure, Incoming, Progress, Received};
use super::{Action, Level, Limits, SecondaryStats, SecondaryZone, ZoneStatus};
use crate::action::Token;
use crate::client::{frame, Lookup, Question, Step};
use crate::record::read_sections;
use crate::rng::Rng;
use crate::tsig::{ClientSigner, UnixClock};
use crate::zone::{Serial, Zone};

/// Shortest and longest refresh and retry intervals taken from an SOA (a primary's SOA
/// of 0 must not make a busy loop, nor one of 2^32 seconds stop the checks).
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Keeps secondary zones in sync with their primaries. See the [module](super) docs.
pub struct Secondary {
    zones: Vec<Slot>,
    limits: Limits,
    rng: Rng,
    next_token: u64,
    actions: VecDeque<Action>,
    stats: SecondaryStats,
    /// Wall-clock time for TSIG.
    clock: UnixClock,
}

/// One zone's state.
struct Slot {
    config: SecondaryZone,
    /// The data, once there is some (served or expired).
    zone: Option<Arc<Zone>>,
    served: bool,
    /// When the data expires unless refreshed.
    expires: Option<Instant>,
    /// When the next serial check starts (while idle).
    next_check: Instant,
    task: Task,
    /// A NOTIFY came while busy: check once more when done.
    recheck: bool,
}

enum Task {
    Idle,
    /// Asking for the SOA.
    Check {
        token: Token,
        lookup: Lookup,
        deadline: Instant,
        signer: Option<ClientSigner>,
    },
    /// Reading a transfer.
    Transfer {
        token: Token,
        incoming: Incoming,
        deadline: Instant,
        signer: Option<ClientSigner>,
    },
}

impl Task {
    fn token(&self) -> Option<Token> {
        match self {
            Task::Idle => None,
            Task::Check { token, .. } | Task::Transfer { token, .. } => Some(*token),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Task::Idle => None,
            Task::Check { deadline, .. } | Task::Transfer { deadline, .. } => Some(*deadline),
        }
    }
}

/// The three SOA timers of a zone.
struct Timers {
    refresh: Duration,
    retry: Duration,
    expire: Duration,
}

fn timers(zone: &Zone) -> Option<Timers> {
    let AllRecordData::Soa(soa) = zone.soa().data() else {
        return None;
    };
    let clamp = |t: domain::base::Ttl| {
        Duration::from_secs(u64::from(t.as_secs())).clamp(MIN_INTERVAL, MAX_INTERVAL)
    };
    Some(Timers {
        refresh: clamp(soa.refresh()),
        retry: clamp(soa.retry()),
        expire: Duration::from_secs(u64::from(soa.expire().as_secs())).max(MIN_INTERVAL),
    })
}

/// Whether serial `a` is newer than `b` (RFC 1982).
fn newer(a: u32, b: u32) -> bool {
    Serial(a).is_newer_than(Serial(b))
}

impl Secondary {
    /// A machine for `zones`, whose first serial checks are due at `now` (they start at
    /// the first [`handle_timeout`](Secondary::handle_timeout)). `seed` feeds the CSPRNG
    /// for message IDs.
    pub fn new(
        zones: Vec<SecondaryZone>,
        limits: Limits,
        seed: [u8; 32],
        now: Instant,
    ) -> Secondary {
        Secondary {
            zones: zones
                .into_iter()
                .map(|config| Slot {
                    config,
                    zone: None,
                    served: false,
                    expires: None,
                    next_check: now,
                    task: Task::Idle,
                    recheck: false,
                })
                .collect(),
            limits,
            rng: Rng::new(seed),
            next_token: 0,
            actions: VecDeque::new(),
            stats: SecondaryStats::default(),
            clock: UnixClock::new(now, 0),
        }
    }

    /// Tells the machine the wall-clock time (for TSIG): `now` was `unix_secs` seconds
    /// after 1970-01-01 UTC. Until set, the time is the epoch plus the time since `new`.
    pub fn set_unix_time(&mut self, now: Instant, unix_secs: u64) {
        self.clock = UnixClock::new(now, unix_secs);
    }

    /// Data saved before (`--zone-dir`) for one of the zones, given before the first
    /// [`handle_timeout`](Secondary::handle_timeout): served at once, as if just
    /// refreshed, and checked against the primary at once. A zone that is not one of
    /// these secondaries is refused (`false`).
    pub fn preload(&mut self, now: Instant, zone: Zone) -> bool {
        let Some(i) = self.find(zone.origin()) else {
            return false;
        };
        let zone = Arc::new(zone);
        self.zones[i].zone = Some(zone.clone());
        self.serve(i, now, zone, false);
        true
    }

    /// The next action for the runtime, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Secondary::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.zones
            .iter()
            .flat_map(|s| {
                let check = matches!(s.task, Task::Idle).then_some(s.next_check);
                let expires = s.expires.filter(|_| s.served);
                [check, s.task.deadline(), expires]
            })
            .flatten()
            .min()
    }

    /// Counters since creation.
    pub fn stats(&self) -> SecondaryStats {
        self.stats
    }

    /// Every zone: its serial and whether it is served.
    pub fn status(&self) -> Vec<ZoneStatus> {
        self.zones
            .iter()
            .map(|s| ZoneStatus {
                origin: s.config.origin.clone(),
                serial: s.zone.as_ref().map(|z| z.serial()),
                served: s.served,
            })
            .collect()
    }

    /// A NOTIFY for `origin` was accepted (by a [`Server`](crate::Server)): check the
    /// serial now. While a check or transfer of the zone runs, any number of NOTIFYs add
    /// one check after it (the primary may have changed after it asked), never more.
    pub fn notify(&mut self, now: Instant, origin: &Name<Bytes>) {
        let Some(i) = self.find(origin) else { return };
        self.stats.notifies += 1;
        let slot = &mut self.zones[i];
        if matches!(slot.task, Task::Idle) {
            slot.next_check = now;
            self.handle_timeout(now);
        } else {
            slot.recheck = true;
        }
    }

    /// Runs every timer due at `now`. Extra calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.zones.len() {
            let slot = &self.zones[i];
            if slot.task.deadline().is_some_and(|d| d <= now) {
                let what = match slot.task {
                    Task::Transfer { ref incoming, .. } => format!(
                        "the transfer took longer than {:?} ({} messages)",
                        self.limits.transfer_timeout,
                        incoming.messages()
                    ),
                    _ => "no answer to the SOA query".to_string(),
                };
                self.fail(i, now, &what);
            }
            let slot = &self.zones[i];
            if slot.served && slot.expires.is_some_and(|e| e <= now) {
                self.expire(i);
            }
            let slot = &self.zones[i];
            if matches!(slot.task, Task::Idle) && slot.next_check <= now {
                self.start_check(i, now);
            }
        }
    }

    /// A datagram read on the UDP socket of `token`.
    pub fn handle_udp(&mut self, now: Instant, token: Token, from: SocketAddr, bytes: &[u8]) {
        let Some(i) = self.by_token(token) else {
            return;
        };
        let Task::Check { lookup, .. } = &mut self.zones[i].task else {
            return;
        };
        let step = lookup.handle(from, bytes);
        self.checked(i, now, step);
    }

    /// Bytes read from the TCP connection of `token` (any chunking).
    pub fn handle_tcp(&mut self, now: Instant, token: Token, bytes: &[u8]) {
        let Some(i) = self.by_token(token) else {
            return;
        };
        let primary = self.zones[i].config.primary;
        match &mut self.zones[i].task {
            Task::Idle => {}
            Task::Check { lookup, .. } => {
                let step = lookup.handle(primary, bytes);
                self.checked(i, now, step);
            }
            Task::Transfer {
                incoming, signer, ..
            } => {
                let unix = self.clock.unix_secs(now);
                let progress = incoming.push(bytes, &mut |message| match signer {
                    Some(signer) => signer
                        .verify(&mut message.to_vec(), unix)
                        .map_err(|e| e.to_string()),
                    None => Ok(()),
                });
                self.transferred(i, now, progress);
            }
        }
    }

    /// The socket of `token` failed, or the primary closed the connection.
    pub fn handle_closed(&mut self, now: Instant, token: Token) {
        let Some(i) = self.by_token(token) else {
            return;
        };
        let what = match &self.zones[i].task {
            Task::Transfer { incoming, .. } => format!(
                "the primary closed the connection after {} messages, before the closing SOA",
                incoming.messages()
            ),
            _ => "the SOA query failed (connection refused or closed)".to_string(),
        };
        self.fail(i, now, &what);
    }

    fn find(&self, origin: &Name<Bytes>) -> Option<usize> {
        self.zones
            .iter()
            .position(|s| s.config.origin.name_eq(origin))
    }

    fn by_token(&self, token: Token) -> Option<usize> {
        self.zones
            .iter()
            .position(|s| s.task.token() == Some(token))
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    fn log(&mut self, level: Level, line: String) {
        self.actions.push_back(Action::Log { level, line });
    }

    fn start_check(&mut self, i: usize, now: Instant) {
        self.stats.checks += 1;
        let token = self.token();
        let id = self.rng.id();
        let slot = &mut self.zones[i];
        let question = to_primary(&slot.config.origin, Rtype::SOA);
        let lookup = Lookup::new(question, slot.config.primary, id);
        let mut bytes = lookup.message();
        let signer = match sign(&slot.config, &mut bytes, self.clock.unix_secs(now)) {
            Ok(signer) => signer,
            Err(why) => return self.fail(i, now, &why),
        };
        self.actions.push_back(Action::SendUdp {
            token,
            to: slot.config.primary,
            bytes,
        });
        slot.task = Task::Check {
            token,
            lookup,
            deadline: now + self.limits.query_timeout,
            signer,
        };
    }

    /// What the SOA query's reply says.
    fn checked(&mut self, i: usize, now: Instant, step: Step) {
        let reply = match step {
            Step::Wait => return,
            Step::Broken => return self.fail(i, now, "a broken reply to the SOA query over TCP"),
            Step::RetryOverTcp => {
                let unix = self.clock.unix_secs(now);
                let slot = &mut self.zones[i];
                let Task::Check {
                    token,
                    lookup,
                    signer,
                    ..
                } = &mut slot.task
                else {
                    return;
                };
                let old = *token;
                let mut query = lookup.message().split_off(2);
                *signer = match sign(&slot.config, &mut query, unix) {
                    Ok(signer) => signer,
                    Err(why) => return self.fail(i, now, &why),
                };
                let bytes = frame(&query).unwrap_or_default();
                let to = lookup.server();
                let new = Token(self.next_token + 1);
                self.next_token += 1;
                *token = new;
                self.actions.push_back(Action::Close { token: old });
                self.actions.push_back(Action::Connect {
                    token: new,
                    to,
                    bytes,
                });
                return;
            }
            Step::Done(reply) => reply,
        };
        if let Task::Check {
            signer: Some(signer),
            ..
        } = &mut self.zones[i].task
        {
            let mut bytes = reply.message().as_slice().to_vec();
            let verified = signer.verify(&mut bytes, self.clock.unix_secs(now));
            if let Err(e) = verified.and_then(|()| signer.clone().done()) {
                return self.fail(i, now, &format!("the SOA reply: {e}"));
            }
        }
        let origin = self.zones[i].config.origin.clone();
        let serial = match read_sections(reply.message()) {
            Ok(s) if s.rcode.rcode() == Rcode::NOERROR => s
                .answer
                .iter()
                .find(|rr| rr.rtype() == Rtype::SOA && rr.owner().name_eq(&origin))
                .and_then(soa_serial),
            _ => None,
        };
        let Some(serial) = serial else {
            let why = format!(
                "the primary answered the SOA query {} without the zone's SOA",
                reply.rcode()
            );
            return self.fail(i, now, &why);
        };
        self.close_task(i);
        let ours = self.zones[i].zone.as_ref().map(|z| z.serial());
        match ours {
            None => self.start_transfer(i, now, Asked::Axfr),
            Some(ours) if newer(serial, ours) => self.start_transfer(i, now, Asked::Ixfr(ours)),
            Some(ours) => {
                if serial != ours {
                    self.log(
                        Level::Warn,
                        format!(
                            "zone {}: the primary's serial {serial} is older than ours, {ours} (RFC 1982): kept ours",
                            origin.fmt_with_dot()
                        ),
                    );
                }
                self.refreshed(i, now);
            }
        }
    }

    fn start_transfer(&mut self, i: usize, now: Instant, asked: Asked) {
        let token = self.token();
        let id = self.rng.id();
        let slot = &mut self.zones[i];
        let origin = slot.config.origin.clone();
        let query = match (asked, &slot.zone) {
            (Asked::Ixfr(_), Some(zone)) => ixfr_query(id, zone),
            _ => to_primary(&origin, Rtype::AXFR).encode(id),
        };
        let asked = match (asked, &slot.zone) {
            (Asked::Ixfr(serial), Some(_)) => Asked::Ixfr(serial),
            _ => Asked::Axfr,
        };
        let mut query = query;
        let signer = match sign(&slot.config, &mut query, self.clock.unix_secs(now)) {
            Ok(signer) => signer,
            Err(why) => return self.fail(i, now, &why),
        };
        self.actions.push_back(Action::Connect {
            token,
            to: slot.config.primary,
            bytes: frame(&query).unwrap_or_default(),
        });
        slot.task = Task::Transfer {
            token,
            incoming: Incoming::new(origin, asked, id, self.limits.max_transfer_bytes),
            deadline: now + self.limits.transfer_timeout,
            signer,
        };
    }

    fn transferred(&mut self, i: usize, now: Instant, progress: Progress) {
        let received = match progress {
            Progress::More => return,
            Progress::Failed(Failure::IxfrRefused(rcode)) => {
                self.close_task(i);
                let origin = self.zones[i].config.origin.fmt_with_dot().to_string();
                self.log(
                    Level::Info,
                    format!("zone {origin}: IXFR answered {rcode}: asking AXFR"),
                );
                return self.start_transfer(i, now, Asked::Axfr);
            }
            Progress::Failed(Failure::Broken(why)) => return self.fail(i, now, &why),
            Progress::Done(received) => received,
        };
        let (messages, signer) = match &mut self.zones[i].task {
            Task::Transfer {
                incoming, signer, ..
            } => (incoming.messages(), signer.take()),
            _ => (0, None),
        };
        if let Some(Err(e)) = signer.map(ClientSigner::done) {
            return self.fail(i, now, &format!("the transfer's last message: {e}"));
        }
        self.close_task(i);
        let slot = &self.zones[i];
        let origin = slot.config.origin.fmt_with_dot().to_string();
        let source = format!("{origin} from {}", slot.config.primary);
        let (built, how) = match (received, &slot.zone) {
            (Received::UpToDate, _) => return self.refreshed(i, now),
            (Received::Full(records), _) => (full_zone(records, source), "AXFR"),
            (Received::Incremental(records), Some(base)) => {
                match incremental(base, records, source) {
                    Ok(zone) => (Ok(zone), "IXFR"),
                    Err(why) => {
                        self.log(Level::Warn, format!("zone {origin}: {why}: asking AXFR"));
                        return self.start_transfer(i, now, Asked::Axfr);
                    }
                }
            }
            (Received::Incremental(_), None) => (
                Err("IXFR steps with no version to apply them to".to_string()),
                "IXFR",
            ),
        };
        let zone = match built {
            Ok(zone) => zone,
            Err(why) => return self.fail(i, now, &why),
        };
        if let Some(ours) = slot.zone.as_ref().map(|z| z.serial()) {
            if !newer(zone.serial(), ours) {
                let why = format!(
                    "the transfer brought serial {}, not newer than ours, {ours}",
                    zone.serial()
                );
                return self.fail(i, now, &why);
            }
        }
        self.stats.transfers_ok += 1;
        self.log(
            Level::Info,
            format!(
                "zone {origin}: serial {} transferred by {how} from {} ({} records, {messages} messages)",
                zone.serial(),
                self.zones[i].config.primary,
                zone.record_count()
            ),
        );
        let zone = Arc::new(zone);
        self.zones[i].zone = Some(zone.clone());
        self.serve(i, now, zone, true);
        self.refreshed(i, now);
    }

    /// Serves `zone` (the zone's data now).
    fn serve(&mut self, i: usize, now: Instant, zone: Arc<Zone>, transferred: bool) {
        let slot = &mut self.zones[i];
        slot.served = true;
        if let Some(t) = timers(&zone) {
            slot.expires = Some(now + t.expire);
        }
        self.actions.push_back(Action::Serve { zone, transferred });
    }

    /// The zone is as new as the primary's: the timers start over.
    fn refreshed(&mut self, i: usize, now: Instant) {
        let Some(zone) = self.zones[i].zone.clone() else {
            return;
        };
        if !self.zones[i].served {
            self.log(
                Level::Info,
                format!(
                    "zone {}: refreshed, served again",
                    zone.origin().fmt_with_dot()
                ),
            );
            self.serve(i, now, zone.clone(), false);
        }
        let slot = &mut self.zones[i];
        if let Some(t) = timers(&zone) {
            slot.expires = Some(now + t.expire);
            slot.next_check = now + t.refresh;
        }
        self.after_task(i, now);
    }

    /// The check or transfer failed: the data served stays; the retry timer runs.
    fn fail(&mut self, i: usize, now: Instant, why: &str) {
        if matches!(self.zones[i].task, Task::Transfer { .. }) {
            self.stats.transfers_failed += 1;
        }
        self.close_task(i);
        let slot = &mut self.zones[i];
        let retry = match slot.zone.as_deref().and_then(timers) {
            Some(t) => t.retry,
            None => self.limits.first_retry,
        };
        slot.next_check = now + retry;
        let (origin, primary) = (
            slot.config.origin.fmt_with_dot().to_string(),
            slot.config.primary,
        );
        let kept = match &slot.zone {
            Some(z) if slot.served => format!("serial {} still served", z.serial()),
            Some(_) => "expired".to_string(),
            None => "not served yet".to_string(),
        };
        self.log(
            Level::Warn,
            format!("zone {origin}: primary {primary}: {why}; {kept}, retry in {retry:?}"),
        );
        self.after_task(i, now);
    }

    fn expire(&mut self, i: usize) {
        let slot = &mut self.zones[i];
        slot.served = false;
        self.stats.expirations += 1;
        let origin = slot.config.origin.clone();
        self.log(
            Level::Warn,
            format!(
                "zone {}: not refreshed within its SOA EXPIRE: answering SERVFAIL until it is",
                origin.fmt_with_dot()
            ),
        );
        self.actions.push_back(Action::Expire { origin });
    }

    /// Ends the task, closing its socket.
    fn close_task(&mut self, i: usize) {
        let task = std::mem::replace(&mut self.zones[i].task, Task::Idle);
        if let Some(token) = task.token() {
            self.actions.push_back(Action::Close { token });
        }
    }

    /// A task ended: one more check at once if a NOTIFY came meanwhile.
    fn after_task(&mut self, i: usize, now: Instant) {
        let slot = &mut self.zones[i];
        if std::mem::take(&mut slot.recheck) && matches!(slot.task, Task::Idle) {
            self.start_check(i, now);
        }
    }
}

/// A question for a primary: no recursion wanted, no EDNS (a primary's answers over UDP
/// are small; transfers go over TCP).
fn to_primary(origin: &Name<Bytes>, qtype: Rtype) -> Question {
    let mut question = Question::new(origin.clone(), qtype);
    question.rd = false;
    question.edns = None;
    question
}

/// Signs `query` with the zone's key, if it has one.
fn sign(
    zone: &SecondaryZone,
    query: &mut Vec<u8>,
    unix_secs: u64,
) -> Result<Option<ClientSigner>, String> {
    match &zone.key {
        None => Ok(None),
        Some(key) => ClientSigner::sign(key, query, unix_secs)
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

/// An IXFR query: the zone's SOA in the authority section says which version we have.
fn ixfr_query(id: u16, zone: &Zone) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(id);
    let mut q = b.question();
    let _ = q.push((zone.origin(), Rtype::IXFR, Class::IN));
    let mut auth = q.authority();
    let _ = auth.push(zone.soa());
    auth.finish()
}
