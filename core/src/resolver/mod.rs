//! Resolvers: the pluggable sources of answers, asked in chain order.
//!
//! A [`Resolver`] looks at a [`Query`] and returns a [`Resolution`]: an [`Answer`],
//! [`Resolution::Pass`] ("not mine": ask the next resolver, Twisted's `DomainError`), or an
//! [`Exchange`] with upstream servers whose outcome comes back through
//! [`Resolver::on_exchange`], or a [`Resolution::Lookup`]: a job of its own for the
//! runtime whose outcome comes back through [`Resolver::on_lookup`]. Resolvers never see
//! sockets, IDs, ports or a clock.

mod chain;
mod forward;
mod synth;

pub use chain::Chain;
pub use forward::{ForwardRoute, Forwarder};
pub use synth::{Synth, SynthRule};

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::base::iana::{Class, OptRcode, Rcode, Rtype};
use domain::base::{Message, Name, Record, Ttl};
use domain::rdata::AllRecordData;

use crate::action::Transport;
use crate::lookup::{LookupOutcome, Payload};
use crate::record::{read_sections, Rr};
use crate::request::Request;
use crate::wire::Prebuilt;

/// A source of answers in the chain.
///
/// Implement [`name`](Resolver::name) and [`resolve`](Resolver::resolve); the other
/// methods have defaults. This is Twisted's `DynamicResolver` from its "custom server"
/// howto: it answers `workstationN.<anything>` and lets everything else pass to the
/// resolvers after it (in `names`, typically a [`Forwarder`]):
///
/// ```
/// use std::net::Ipv4Addr;
/// use std::time::Instant;
/// use names_core::{Action, Chain, Config, Context, Origin, Query, Resolution, Resolver, Server};
/// use names_core::domain::base::iana::Rtype;
/// use names_core::domain::base::{Message, MessageBuilder, Name};
/// use names_core::domain::rdata::A;
///
/// /// Twisted's `DynamicResolver`: `workstationN.<anything>` A -> 172.0.2.N, the rest passes.
/// struct DynamicResolver;
///
/// impl Resolver for DynamicResolver {
///     fn name(&self) -> &str {
///         "dynamic"
///     }
///
///     fn resolve(&mut self, query: &Query<'_>, _cx: &mut Context) -> Resolution {
///         match (query.qtype(), workstation_number(query.first_label())) {
///             (Rtype::A, Some(n)) => {
///                 Resolution::answer([query.record(60, A::new(Ipv4Addr::new(172, 0, 2, n)))])
///             }
///             _ => Resolution::Pass, // not mine: the next resolver is asked
///         }
///     }
/// }
///
/// /// `workstationN`, in any case, with N in 0..=255: N.
/// fn workstation_number(label: &[u8]) -> Option<u8> {
///     let label = std::str::from_utf8(label).ok()?.to_ascii_lowercase();
///     let digits = label.strip_prefix("workstation")?;
///     digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok())?
/// }
///
/// // In front of the standard resolvers, e.g. `.with(Forwarder::new(upstreams))`.
/// let chain = Chain::new().with(DynamicResolver);
/// let mut server = Server::new(Config::default(), chain, [0; 32]);
///
/// let mut query = MessageBuilder::new_vec();
/// query.header_mut().set_id(7);
/// let mut query = query.question();
/// let name: Name<Vec<u8>> = "Workstation7.example.com".parse().unwrap();
/// query.push((&name, Rtype::A)).unwrap();
/// let query = query.finish();
///
/// let client = Origin::Udp {
///     listener: 0,
///     peer: "127.0.0.1:40000".parse().unwrap(),
/// };
/// server.handle_client(Instant::now(), client, &query);
/// let Some(Action::Reply { bytes, .. }) = server.poll_action() else { panic!("a reply") };
/// let reply = Message::from_octets(bytes).unwrap();
/// let a = reply.answer().unwrap().limit_to::<A>().next().unwrap().unwrap();
/// assert_eq!(a.data().addr(), Ipv4Addr::new(172, 0, 2, 7));
/// assert_eq!(a.owner().to_string(), "Workstation7.example.com");
/// assert_eq!(server.answers_by_source(), [("dynamic", 1), ("none", 0)]);
/// ```
pub trait Resolver: Send {
    /// A short name for logs, metrics and the startup line (`synth`, `forward`, ...).
    fn name(&self) -> &str;

    /// Answers, passes, or asks for an upstream exchange.
    fn resolve(&mut self, query: &Query<'_>, cx: &mut Context) -> Resolution;

    /// The outcome of an exchange this resolver asked for. The default answers
    /// the upstream's reply as it is, and SERVFAIL on failure.
    fn on_exchange(&mut self, query: &Query<'_>, done: Exchanged, cx: &mut Context) -> Resolution {
        let _ = (query, cx);
        Resolution::Answer(match done {
            Exchanged::Reply(reply) => {
                Answer::from_upstream(&reply).unwrap_or_else(Answer::servfail)
            }
            Exchanged::Failed(_) => Answer::servfail(),
        })
    }

    /// The outcome of a [`Resolution::Lookup`] this resolver asked for: the job's result,
    /// or [`LookupOutcome::TimedOut`] when the query's budget ended first. Answer, pass to
    /// the next resolver, or ask again (another lookup or an exchange; after the budget
    /// that is SERVFAIL). The default answers SERVFAIL.
    fn on_lookup(
        &mut self,
        query: &Query<'_>,
        outcome: LookupOutcome,
        cx: &mut Context,
    ) -> Resolution {
        let _ = (query, outcome, cx);
        Resolution::Answer(Answer::servfail())
    }

    /// A resolver after this one in the chain answered `query`. Return a replacement to
    /// reply with instead (a cache serving stale data over a SERVFAIL), or `None`.
    /// Only `Resolution::Answer` and `Resolution::Prebuilt` replace; other variants are ignored.
    /// A cache fills itself here.
    fn on_later_answer(
        &mut self,
        query: &Query<'_>,
        answer: &Answer,
        cx: &mut Context,
    ) -> Option<Resolution> {
        let _ = (query, answer, cx);
        None
    }

    /// Whether this resolver recurses on the client's behalf (sets RA in every reply).
    fn recursion_available(&self) -> bool {
        false
    }
}

/// What the server gives a resolver besides the query.
pub struct Context {
    now: Instant,
    background: bool,
    prefetch: bool,
    random: u64,
    state: Option<Box<dyn Any + Send>>,
    /// A TSIG error for the answer (a transfer rule refusing the request's key).
    tsig_error: Option<crate::tsig::TsigRcode>,
}

/// A query's per-resolution state ([`Context::state`]), kept with the query while it
/// waits and freed with it. A copy of a query (a background refresh) starts empty.
#[derive(Default)]
pub(crate) struct StateSlot(Option<Box<dyn Any + Send>>);

impl Clone for StateSlot {
    fn clone(&self) -> StateSlot {
        StateSlot(None)
    }
}

impl std::fmt::Debug for StateSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "StateSlot(..)"
        } else {
            "StateSlot"
        })
    }
}

impl Context {
    pub(crate) fn new(now: Instant) -> Context {
        Context {
            now,
            background: false,
            prefetch: false,
            random: 0,
            state: None,
            tsig_error: None,
        }
    }

    /// The context of `request`'s resolution (a background refresh has no client): it
    /// holds the request's state until [`Context::give_back`] returns it. `random` is a
    /// draw from the server's seeded RNG.
    pub(crate) fn of(now: Instant, request: &mut Request, random: u64) -> Context {
        Context {
            background: request.background,
            random,
            state: request.state.0.take(),
            ..Context::new(now)
        }
    }

    /// The context in which a resolver before the answering one sees the answer
    /// ([`Resolver::on_later_answer`]): the query's state stays where it is.
    pub(crate) fn seeing(now: Instant, request: &Request) -> Context {
        Context {
            background: request.background,
            ..Context::new(now)
        }
    }

    /// Puts the query's state back into `request`, where it waits with it.
    pub(crate) fn give_back(&mut self, request: &mut Request) {
        request.state.0 = self.state.take();
    }

    /// This query's own state for a resolver that answers in several steps (a recursor
    /// following referrals): kept with the query between [`Resolver::resolve`],
    /// [`Resolver::on_exchange`] and [`Resolver::on_lookup`] calls, freed when the query
    /// is answered. The first call makes a `T::default()`; asking for another type
    /// replaces it (one resolver works on a query at a time).
    ///
    /// A resolver asking its upstreams once more after a failure, counting per query:
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use std::sync::Arc;
    /// use names_core::{Answer, Context, Exchange, Exchanged, Query, Resolution, Resolver};
    ///
    /// struct Twice(Arc<[SocketAddr]>);
    ///
    /// #[derive(Default)]
    /// struct Tries(u8);
    ///
    /// impl Resolver for Twice {
    ///     fn name(&self) -> &str {
    ///         "twice"
    ///     }
    ///
    ///     fn resolve(&mut self, q: &Query<'_>, cx: &mut Context) -> Resolution {
    ///         cx.state::<Tries>().0 = 1;
    ///         Resolution::Exchange(Exchange::forward(q, self.0.clone()))
    ///     }
    ///
    ///     fn on_exchange(&mut self, q: &Query<'_>, done: Exchanged, cx: &mut Context) -> Resolution {
    ///         let tries = cx.state::<Tries>();
    ///         match done {
    ///             Exchanged::Failed(_) if tries.0 < 2 => {
    ///                 tries.0 += 1;
    ///                 Resolution::Exchange(Exchange::forward(q, self.0.clone()))
    ///             }
    ///             Exchanged::Failed(_) => Resolution::Answer(Answer::servfail()),
    ///             Exchanged::Reply(reply) => {
    ///                 Resolution::Answer(Answer::from_upstream(&reply).unwrap_or_else(Answer::servfail))
    ///             }
    ///         }
    ///     }
    /// }
    /// ```
    pub fn state<T: Default + Send + 'static>(&mut self) -> &mut T {
        let boxed = self.state.get_or_insert_with(|| Box::new(T::default()));
        if !boxed.is::<T>() {
            *boxed = Box::new(T::default());
        }
        match boxed.downcast_mut::<T>() {
            Some(state) => state,
            None => unreachable!("the slot was just filled with a T"),
        }
    }

    /// A random number from the server's seeded RNG, drawn for this call.
    pub(crate) fn random(&self) -> u64 {
        self.random
    }

    /// Whether the query is a background refresh (prefetch) with no client waiting.
    pub fn is_background(&self) -> bool {
        self.background
    }

    /// Asks the server to refresh the query in the background, from the resolver after
    /// this one, once this resolution is answered (a cache's prefetch).
    pub(crate) fn ask_prefetch(&mut self) {
        self.prefetch = true;
    }

    pub(crate) fn prefetch_asked(&self) -> bool {
        self.prefetch
    }

    /// Asks the server to answer with this TSIG error, unsigned (a signed request whose
    /// key may not do what it asks: BADKEY, RFC 8945 5.2.2).
    pub(crate) fn refuse_key(&mut self, error: crate::tsig::TsigRcode) {
        self.tsig_error = Some(error);
    }

    pub(crate) fn tsig_error(&self) -> Option<crate::tsig::TsigRcode> {
        self.tsig_error
    }

    /// The time the server was last given.
    pub fn now(&self) -> Instant {
        self.now
    }
}

/// A read-only view of a client query.
pub struct Query<'a> {
    request: &'a Request,
}

impl<'a> Query<'a> {
    pub(crate) fn new(request: &'a Request) -> Query<'a> {
        Query { request }
    }

    /// The question name, exactly as asked (case preserved).
    pub fn qname(&self) -> &Name<Bytes> {
        &self.request.qname
    }

    /// The question type.
    pub fn qtype(&self) -> Rtype {
        self.request.qtype
    }

    /// The question class.
    pub fn qclass(&self) -> Class {
        self.request.qclass
    }

    /// The transport the query came in on.
    pub fn transport(&self) -> Transport {
        self.request.origin.transport()
    }

    /// The client's DO bit (EDNS).
    pub fn dnssec_ok(&self) -> bool {
        self.request.edns.is_some_and(|e| e.dnssec_ok)
    }

    /// The client's CD bit.
    pub fn checking_disabled(&self) -> bool {
        self.request.cd
    }

    /// The client's address.
    pub fn client(&self) -> std::net::SocketAddr {
        self.request.client
    }

    /// The TSIG key the query was signed with, verified (RFC 8945); `None` if unsigned.
    pub fn tsig_key(&self) -> Option<&crate::tsig::Key> {
        self.request.tsig.as_ref().map(|t| t.key())
    }

    /// The client's serial in an IXFR query (the SOA of its authority section).
    pub fn ixfr_serial(&self) -> Option<u32> {
        self.request.ixfr_serial
    }

    /// The recursion-desired bit.
    pub fn recursion_desired(&self) -> bool {
        self.request.rd
    }

    /// The first label of the question name as asked (case preserved), without its
    /// length byte: `b"Workstation7"` for `Workstation7.example.com`, empty for the root.
    pub fn first_label(&self) -> &[u8] {
        // Wire format: the first byte is the first label's length, its bytes follow.
        let wire = self.request.qname.as_slice();
        let len = wire.first().map_or(0, |&len| usize::from(len));
        wire.get(1..1 + len).unwrap_or_default()
    }

    /// A record owned by the question name as asked, class IN: `data` is any record data of
    /// [`domain::rdata`], e.g. `query.record(60, A::new(addr))`.
    pub fn record(&self, ttl: u32, data: impl Into<AllRecordData<Bytes, Name<Bytes>>>) -> Rr {
        Record::new(
            self.request.qname.clone(),
            Class::IN,
            Ttl::from_secs(ttl),
            data.into(),
        )
    }
}

/// A resolver's verdict on a query.
#[derive(Debug)]
pub enum Resolution {
    /// Reply with this.
    Answer(Answer),
    /// Not mine: ask the next resolver in the chain.
    Pass,
    /// Ask upstream servers; the outcome comes to [`Resolver::on_exchange`].
    Exchange(Exchange),
    /// Reply with an answer encoded beforehand (a [`Cache`](crate::cache::Cache) hit, a
    /// [`Synth`] answer, any resolver's [`Prebuilt::new`]): its records are copied into
    /// the reply, not encoded again.
    Prebuilt(Prebuilt),
    /// Ask the runtime to run this job (a database query, an HTTP request: any work of the
    /// resolver's own, in a type the runtime knows); the outcome comes to
    /// [`Resolver::on_lookup`]. The query waits within its budget; the server emits
    /// [`Action::Lookup`](crate::Action::Lookup) and is resumed by
    /// [`Server::handle_lookup`](crate::Server::handle_lookup).
    ///
    /// Here the test plays a runtime that carries lookups; the job is a `String` key, the
    /// result an address:
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use std::time::Instant;
    /// use names_core::{Action, Answer, Chain, Config, Context, LookupOutcome, Origin, Payload};
    /// use names_core::{Query, Resolution, Resolver, Server};
    /// use names_core::domain::base::iana::{Rcode, Rtype};
    /// use names_core::domain::base::{Message, MessageBuilder, Name};
    /// use names_core::domain::rdata::A;
    ///
    /// /// Asks the runtime for the address of the first label, in a registry it knows.
    /// struct Registry;
    ///
    /// impl Resolver for Registry {
    ///     fn name(&self) -> &str {
    ///         "registry"
    ///     }
    ///
    ///     fn resolve(&mut self, query: &Query<'_>, _cx: &mut Context) -> Resolution {
    ///         let key = String::from_utf8_lossy(query.first_label()).to_lowercase();
    ///         Resolution::Lookup(Payload::new(key))
    ///     }
    ///
    ///     fn on_lookup(&mut self, query: &Query<'_>, outcome: LookupOutcome, _cx: &mut Context)
    ///         -> Resolution {
    ///         match outcome {
    ///             LookupOutcome::Done(result) => match result.downcast::<Option<Ipv4Addr>>() {
    ///                 Ok(Some(addr)) => Resolution::answer([query.record(30, A::new(addr))]),
    ///                 Ok(None) => Resolution::Pass, // unknown here: the next resolver
    ///                 Err(_) => Resolution::Answer(Answer::servfail()),
    ///             },
    ///             LookupOutcome::TimedOut => Resolution::Answer(Answer::servfail()),
    ///         }
    ///     }
    /// }
    ///
    /// let mut server = Server::new(Config::default(), Chain::new().with(Registry), [3; 32]);
    /// let mut query = MessageBuilder::new_vec();
    /// query.header_mut().set_id(9);
    /// let mut query = query.question();
    /// let name: Name<Vec<u8>> = "web.svc.test".parse().unwrap();
    /// query.push((&name, Rtype::A)).unwrap();
    /// let query = query.finish();
    /// let client = Origin::Udp { listener: 0, peer: "127.0.0.1:40000".parse().unwrap() };
    /// server.handle_client(Instant::now(), client, &query);
    ///
    /// // The runtime takes the job, runs it (here at once; really on its executor or a
    /// // thread, while it goes on serving other queries) and hands the result back.
    /// let Some(Action::Lookup { id, job }) = server.poll_action() else { panic!("a lookup") };
    /// let key = job.downcast::<String>().expect("this runtime's job type");
    /// let found = (key == "web").then_some(Ipv4Addr::new(192, 0, 2, 80));
    /// server.handle_lookup(Instant::now(), id, Payload::new(found));
    ///
    /// let Some(Action::Reply { bytes, .. }) = server.poll_action() else { panic!("a reply") };
    /// let reply = Message::from_octets(bytes).unwrap();
    /// assert_eq!(reply.header().rcode(), Rcode::NOERROR);
    /// let a = reply.answer().unwrap().limit_to::<A>().next().unwrap().unwrap();
    /// assert_eq!(a.data().addr(), Ipv4Addr::new(192, 0, 2, 80));
    /// assert_eq!(server.open_lookups(), 0);
    /// ```
    ///
    /// A runtime that cannot run a job (not its type) completes it at once with a result the
    /// resolver does not expect, which it answers with SERVFAIL: a query never hangs on it.
    Lookup(Payload),
}

impl Resolution {
    /// An authoritative NOERROR answer with these records.
    pub fn answer(records: impl IntoIterator<Item = Rr>) -> Resolution {
        let mut answer = Answer::new(Rcode::NOERROR.into());
        answer.answer.extend(records);
        answer.authoritative = true;
        Resolution::Answer(answer)
    }
}

/// A reply's content: response code, sections and flags.
///
/// The server adds the header, echoes the question, sets RA and OPT, and truncates for
/// the client.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The response code (12 bits: the OPT record carries the upper 8).
    pub rcode: OptRcode,
    /// The answer section.
    pub answer: Vec<Rr>,
    /// The authority section (SOA for negative answers, NS for referrals).
    pub authority: Vec<Rr>,
    /// The additional section (the server adds the OPT record itself).
    pub additional: Vec<Rr>,
    /// The AA bit: only local authoritative data sets it.
    pub authoritative: bool,
    /// The AA bit of the upstream reply this answer comes from: a cache ranks its data by
    /// it (RFC 2181 5.4.1); never shown to clients.
    pub upstream_authoritative: bool,
    /// The AD bit, passed on only to clients that set DO.
    pub authenticated: bool,
}

impl Answer {
    /// An empty answer with this response code.
    pub fn new(rcode: OptRcode) -> Answer {
        Answer {
            rcode,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            authoritative: false,
            upstream_authoritative: false,
            authenticated: false,
        }
    }

    /// An empty SERVFAIL answer.
    pub fn servfail() -> Answer {
        Answer::new(Rcode::SERVFAIL.into())
    }

    /// An empty REFUSED answer.
    pub fn refused() -> Answer {
        Answer::new(Rcode::REFUSED.into())
    }

    /// An upstream's reply as an answer: its rcode and sections, never its AA bit.
    /// `None` if a record cannot be read.
    pub fn from_upstream(reply: &Message<Bytes>) -> Option<Answer> {
        let sections = read_sections(reply).ok()?;
        Some(Answer {
            rcode: sections.rcode,
            answer: sections.answer,
            authority: sections.authority,
            additional: sections.additional,
            authoritative: false,
            upstream_authoritative: reply.header().aa(),
            authenticated: reply.header().ad(),
        })
    }
}

/// A question to put to upstream servers on a query's behalf.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Servers in order of preference; tries cycle through them.
    pub servers: Arc<[SocketAddr]>,
    /// The question name to send.
    pub qname: Name<Bytes>,
    /// The question type to send.
    pub qtype: Rtype,
    /// The question class to send.
    pub qclass: Class,
    /// The RD bit of the upstream query.
    pub recursion_desired: bool,
    /// The DO bit of the upstream query's OPT record.
    pub dnssec_ok: bool,
    /// The CD bit of the upstream query.
    pub checking_disabled: bool,
    /// Whether the query carries an OPT record (the engine drops it for a server that
    /// answers FORMERR to it).
    pub edns: bool,
    /// How long one try waits for its reply; `None`: the server's
    /// [`Config::try_timeout`](crate::Config::try_timeout).
    pub try_timeout: Option<Duration>,
    /// Asked as a recursor asks an authoritative server: every reply ends the exchange
    /// whatever its rcode (SERVFAIL, REFUSED and NOTIMP too: the resolver judges them),
    /// and the end of the per-try timeout ends it as [`ExchangeFailure::TimedOut`] rather
    /// than moving to the next server. Give it one server; the resolver picks the next.
    pub iterative: bool,
}

impl Exchange {
    /// The client's question, forwarded as asked.
    pub fn forward(query: &Query<'_>, servers: Arc<[SocketAddr]>) -> Exchange {
        Exchange {
            servers,
            qname: query.qname().clone(),
            qtype: query.qtype(),
            qclass: query.qclass(),
            recursion_desired: true,
            dnssec_ok: query.dnssec_ok(),
            checking_disabled: query.checking_disabled(),
            edns: true,
            try_timeout: None,
            iterative: false,
        }
    }
}

/// How an exchange ended.
#[derive(Clone, Debug)]
pub enum Exchanged {
    /// A matching reply that is not SERVFAIL, REFUSED or NOTIMP.
    Reply(Message<Bytes>),
    /// No usable reply.
    Failed(ExchangeFailure),
}

/// Why an exchange produced no usable reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeFailure {
    /// The query's budget ran out (or, for an [`Exchange::iterative`] one, its try's
    /// timeout).
    TimedOut,
    /// Every upstream answered SERVFAIL, REFUSED or NOTIMP, or could not be reached.
    AllFailed,
    /// Too many exchanges in flight.
    Overloaded,
    /// The exchange named no server.
    NoServers,
}
