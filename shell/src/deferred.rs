//! Asynchronous resolvers (Twisted's `Deferred`): [`AsyncResolver`], an `async fn` over an
//! [`OwnedQuery`], made a core [`Resolver`] by [`deferred`]; and the worker's side of
//! lookups, which runs their futures on the worker's executor until they finish or the
//! core cancels them.

use std::collections::HashMap;
use std::error::Error;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use names_core::domain::base::iana::{Class, Rcode, Rtype};
use names_core::domain::base::{Name, Record, Ttl};
use names_core::domain::rdata::AllRecordData;
use names_core::journal::{decode_answer, encode_answer, LookupCodec};
use names_core::{
    Answer, Context, LookupId, LookupOutcome, Payload, Query, Resolution, Resolver, Rr, Transport,
};
use smol::channel::Sender;
use smol::future::FutureExt;
use smol::{LocalExecutor, Task};

use crate::driver::Event;
use crate::record::Core;

/// What an [`AsyncResolver`] may fail with: any error, answered SERVFAIL (and logged at
/// debug level).
pub type LookupError = Box<dyn Error + Send + Sync>;

/// A resolver that may wait for I/O of its own (a database, an HTTP API, a service
/// registry) before it answers or passes: Twisted's resolver returning a `Deferred`.
///
/// The `names` runtime runs [`resolve`](AsyncResolver::resolve) on the worker's executor,
/// beside the worker's sockets, so awaiting never blocks other queries (a blocking call
/// belongs in `smol::unblock`). The query's budget (`--timeout`) applies: when it ends
/// first the future is dropped and the client gets SERVFAIL. An error is SERVFAIL too.
/// [`deferred`] makes it a resolver for a [`Chain`](names_core::Chain) or a
/// [`Setup`](names_core::setup::Setup).
///
/// The seed's `DynamicResolver`, asynchronous:
///
/// ```
/// use std::net::Ipv4Addr;
/// use names_core::domain::base::iana::Rtype;
/// use names_core::domain::rdata::A;
/// use names_core::setup::Setup;
/// use names_shell::{deferred, AsyncResolver, LookupError, OwnedQuery, Resolved};
///
/// struct DynamicResolver;
///
/// impl AsyncResolver for DynamicResolver {
///     fn name(&self) -> &str {
///         "dynamic"
///     }
///
///     async fn resolve(&self, query: OwnedQuery) -> Result<Resolved, LookupError> {
///         let label = String::from_utf8_lossy(query.first_label()).to_ascii_lowercase();
///         let n = label.strip_prefix("workstation").and_then(|n| n.parse().ok());
///         Ok(match (query.qtype, n) {
///             (Rtype::A, Some(n)) => {
///                 Resolved::records([query.record(60, A::new(Ipv4Addr::new(172, 0, 2, n)))])
///             }
///             _ => Resolved::Pass,
///         })
///     }
/// }
///
/// let dynamic = deferred(DynamicResolver);
/// let setup = Setup::new()
///     .resolver(move || dynamic.clone())
///     .forward_to(vec!["192.0.2.53:53".parse().unwrap()]);
/// assert_eq!(setup.build().names(), ["dynamic", "forward"]);
/// ```
pub trait AsyncResolver: Send + Sync + 'static {
    /// A short name for logs, metrics and the startup line.
    fn name(&self) -> &str;

    /// Answers ([`Resolved::Answer`], [`Resolved::records`]) or passes the query to the
    /// next resolver ([`Resolved::Pass`]); an error is SERVFAIL.
    fn resolve(
        &self,
        query: OwnedQuery,
    ) -> impl Future<Output = Result<Resolved, LookupError>> + Send;

    /// Whether to look `query` up at all: `false` passes it to the next resolver at once,
    /// without a lookup. The default takes every query.
    fn accepts(&self, query: &Query<'_>) -> bool {
        let _ = query;
        true
    }
}

/// What an [`AsyncResolver`] made of a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    /// Reply with this.
    Answer(Answer),
    /// Not mine: ask the next resolver.
    Pass,
}

impl Resolved {
    /// An authoritative NOERROR answer with these records.
    pub fn records(records: impl IntoIterator<Item = Rr>) -> Resolved {
        let mut answer = Answer::new(Rcode::NOERROR.into());
        answer.answer.extend(records);
        answer.authoritative = true;
        Resolved::Answer(answer)
    }
}

/// A client query, owned, for an [`AsyncResolver`] to keep across awaits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedQuery {
    /// The question name, exactly as asked (case preserved).
    pub name: Name<Bytes>,
    /// The question type.
    pub qtype: Rtype,
    /// The question class.
    pub qclass: Class,
    /// The client's address.
    pub client: SocketAddr,
    /// The transport the query came in on.
    pub transport: Transport,
    /// The client's DO bit (EDNS).
    pub dnssec_ok: bool,
    /// The client's CD bit.
    pub checking_disabled: bool,
    /// The client's RD bit.
    pub recursion_desired: bool,
}

impl OwnedQuery {
    /// A copy of `query`.
    pub fn new(query: &Query<'_>) -> OwnedQuery {
        OwnedQuery {
            name: query.qname().clone(),
            qtype: query.qtype(),
            qclass: query.qclass(),
            client: query.client(),
            transport: query.transport(),
            dnssec_ok: query.dnssec_ok(),
            checking_disabled: query.checking_disabled(),
            recursion_desired: query.recursion_desired(),
        }
    }

    /// The first label of the name as asked, without its length byte (empty for the root).
    pub fn first_label(&self) -> &[u8] {
        let wire = self.name.as_slice();
        let len = wire.first().map_or(0, |&len| usize::from(len));
        wire.get(1..1 + len).unwrap_or_default()
    }

    /// A record owned by the name as asked, class IN, e.g. `query.record(30, A::new(addr))`.
    pub fn record(&self, ttl: u32, data: impl Into<AllRecordData<Bytes, Name<Bytes>>>) -> Rr {
        Record::new(
            self.name.clone(),
            Class::IN,
            Ttl::from_secs(ttl),
            data.into(),
        )
    }
}

/// An [`AsyncResolver`] as a core [`Resolver`]: each query becomes a lookup whose job is
/// the resolver's future, which the `names` runtime runs. Clones share the resolver, so
/// one per worker is `move || resolver.clone()`.
pub fn deferred<R: AsyncResolver>(resolver: R) -> Deferred<R> {
    Deferred(Arc::new(resolver))
}

/// The [`Resolver`] made by [`deferred`].
pub struct Deferred<R>(Arc<R>);

impl<R> Clone for Deferred<R> {
    fn clone(&self) -> Self {
        Deferred(self.0.clone())
    }
}

/// A lookup's job in this runtime: the future, which gives the outcome.
struct Job(Pin<Box<dyn Future<Output = Outcome> + Send>>);

/// A job's result.
type Outcome = Result<Resolved, LookupError>;

/// How the outcomes of [`deferred`] resolvers go into a journal (`names serve --record`)
/// and come back in a replay: an answer (through the core's
/// [`encode_answer`](names_core::journal::encode_answer)), a pass, or an error's text.
/// Any other payload is what this runtime hands a lookup it cannot run, replayed as
/// such (the resolver answers SERVFAIL either way).
#[derive(Clone, Copy, Debug, Default)]
pub struct OutcomeCodec;

const ANSWERED: u8 = 0;
const PASSED: u8 = 1;
const FAILED: u8 = 2;
const FOREIGN: u8 = 3;

impl LookupCodec<Payload> for OutcomeCodec {
    fn encode(&self, outcome: &Payload) -> Option<Vec<u8>> {
        Some(match outcome.downcast_ref::<Outcome>() {
            Some(Ok(Resolved::Answer(answer))) => {
                let mut out = vec![ANSWERED];
                out.extend(encode_answer(answer)?);
                out
            }
            Some(Ok(Resolved::Pass)) => vec![PASSED],
            Some(Err(e)) => {
                let mut out = vec![FAILED];
                out.extend(e.to_string().as_bytes());
                out
            }
            None => vec![FOREIGN],
        })
    }

    fn decode(&self, bytes: &[u8]) -> Option<Payload> {
        let (&tag, rest) = bytes.split_first()?;
        let outcome: Outcome = match tag {
            ANSWERED => Ok(Resolved::Answer(decode_answer(rest)?)),
            PASSED if rest.is_empty() => Ok(Resolved::Pass),
            FAILED => Err(String::from_utf8_lossy(rest).into_owned().into()),
            FOREIGN if rest.is_empty() => return Some(Payload::new(())),
            _ => return None,
        };
        Some(Payload::new(outcome))
    }
}

impl<R: AsyncResolver> Resolver for Deferred<R> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn resolve(&mut self, query: &Query<'_>, _: &mut Context) -> Resolution {
        if !self.0.accepts(query) {
            return Resolution::Pass;
        }
        let resolver = self.0.clone();
        let query = OwnedQuery::new(query);
        let future = async move {
            let answer = AssertUnwindSafe(resolver.resolve(query))
                .catch_unwind()
                .await;
            answer.unwrap_or_else(|_| Err("the resolver panicked".into()))
        };
        Resolution::Lookup(Payload::new(Job(Box::pin(future))))
    }

    fn on_lookup(
        &mut self,
        query: &Query<'_>,
        outcome: LookupOutcome,
        _: &mut Context,
    ) -> Resolution {
        let LookupOutcome::Done(result) = outcome else {
            return Resolution::Answer(Answer::servfail()); // the budget ended first
        };
        match result.downcast::<Outcome>() {
            Ok(Ok(Resolved::Answer(answer))) => Resolution::Answer(answer),
            Ok(Ok(Resolved::Pass)) => Resolution::Pass,
            Ok(Err(e)) => {
                log::debug!(
                    "{}: {} {}: {e}",
                    self.0.name(),
                    query.qname(),
                    query.qtype()
                );
                Resolution::Answer(Answer::servfail())
            }
            // Another runtime that could not run the job.
            Err(_) => Resolution::Answer(Answer::servfail()),
        }
    }
}

/// A worker's lookups in flight: the tasks running their jobs on its executor.
pub(crate) struct Lookups {
    ex: Rc<LocalExecutor<'static>>,
    events: Sender<Event>,
    tasks: HashMap<LookupId, Task<()>>,
    /// Whether a job of another runtime's type was logged already.
    logged_foreign: bool,
}

impl Lookups {
    pub fn new(ex: Rc<LocalExecutor<'static>>, events: Sender<Event>) -> Lookups {
        Lookups {
            ex,
            events,
            tasks: HashMap::new(),
            logged_foreign: false,
        }
    }

    /// Runs `job` (from [`deferred`]) on the executor; its outcome comes back as
    /// [`Event::Lookup`]. A job of another type cannot be run here: it fails at once
    /// (SERVFAIL from the resolver), logged once.
    pub fn start(&mut self, id: LookupId, job: Payload, core: &mut Core) {
        match job.downcast::<Job>() {
            Ok(Job(future)) => {
                let events = self.events.clone();
                let task = self.ex.spawn(async move {
                    let outcome: Outcome = future.await;
                    let result = Payload::new(outcome);
                    // Closed only when the worker is gone.
                    let _ = events.send(Event::Lookup { id, result }).await;
                });
                self.tasks.insert(id, task);
            }
            Err(_) => {
                if !self.logged_foreign {
                    self.logged_foreign = true;
                    log::warn!(
                        "a resolver asked for a lookup this runtime cannot run (not made by \
                         names_shell::deferred): answered SERVFAIL"
                    );
                }
                core.handle_lookup(Instant::now(), id, Payload::new(()));
            }
        }
    }

    /// The core dropped lookup `id` (its budget ended): the task is cancelled (its future
    /// dropped on the executor's next turn).
    pub fn cancel(&mut self, id: LookupId) {
        self.tasks.remove(&id);
    }

    /// Lookup `id`'s task has finished.
    pub fn finished(&mut self, id: LookupId) {
        self.tasks.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use names_core::domain::base::{Message, MessageBuilder};
    use names_core::domain::rdata::A;
    use names_core::{Action, Chain, Config, Origin, Server};

    use super::*;

    /// `okN` answers 10.0.0.N, `pass` passes, `err` fails, `panic` panics.
    struct Test;

    impl AsyncResolver for Test {
        fn name(&self) -> &str {
            "test"
        }

        async fn resolve(&self, query: OwnedQuery) -> Result<Resolved, LookupError> {
            smol::future::yield_now().await;
            let label = String::from_utf8_lossy(query.first_label()).into_owned();
            match label.as_str() {
                "pass" => Ok(Resolved::Pass),
                "err" => Err("no registry".into()),
                "panic" => panic!("a bug"),
                _ => {
                    let n = label.trim_start_matches("ok").parse()?;
                    Ok(Resolved::records([
                        query.record(30, A::new(Ipv4Addr::new(10, 0, 0, n)))
                    ]))
                }
            }
        }
    }

    /// Asks `name` A of a server whose chain is `deferred(Test)`, runs the job as the
    /// runtime does, returns the reply's rcode and addresses.
    fn ask(name: &str) -> (Rcode, Vec<Ipv4Addr>) {
        let chain = Chain::new().with(deferred(Test));
        let mut server = Server::new(Config::default(), chain, [1; 32]);
        let mut query = MessageBuilder::new_vec().question();
        let qname: Name<Vec<u8>> = name.parse().unwrap();
        query.push((&qname, Rtype::A)).unwrap();
        let query = query.finish();
        let client = Origin::Udp {
            listener: 0,
            peer: "127.0.0.1:5000".parse().unwrap(),
        };
        let now = Instant::now();
        server.handle_client(now, client, &query);
        let Some(Action::Lookup { id, job }) = server.poll_action() else {
            panic!("a lookup")
        };
        let Ok(Job(future)) = job.downcast::<Job>() else {
            panic!("a job of this runtime")
        };
        let outcome = smol::block_on(future);
        server.handle_lookup(now, id, Payload::new(outcome));
        let Some(Action::Reply { bytes, .. }) = server.poll_action() else {
            panic!("a reply")
        };
        let reply = Message::from_octets(bytes).unwrap();
        let addrs = reply.answer().unwrap().limit_to::<A>();
        let addrs = addrs.map(|r| r.unwrap().data().addr()).collect();
        (reply.header().rcode(), addrs)
    }

    #[test]
    fn answers_errors_and_panics() {
        assert_eq!(
            ask("ok7.test"),
            (Rcode::NOERROR, vec![Ipv4Addr::new(10, 0, 0, 7)])
        );
        assert_eq!(
            ask("pass.test"),
            (Rcode::REFUSED, vec![]),
            "passed: nobody answers"
        );
        assert_eq!(ask("err.test"), (Rcode::SERVFAIL, vec![]));
        assert_eq!(ask("okx.test"), (Rcode::SERVFAIL, vec![]), "a parse error");
        assert_eq!(ask("panic.test"), (Rcode::SERVFAIL, vec![]));
    }

    /// A guard that says when it is dropped.
    struct Dropped(Arc<std::sync::atomic::AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn client_query(server: &mut Core, name: &str) {
        let mut query = MessageBuilder::new_vec().question();
        let qname: Name<Vec<u8>> = name.parse().unwrap();
        query.push((&qname, Rtype::A)).unwrap();
        let client = Origin::Udp {
            listener: 0,
            peer: "127.0.0.1:5000".parse().unwrap(),
        };
        server.handle_client(Instant::now(), client, &query.finish());
    }

    #[test]
    fn the_worker_runs_jobs_cancels_them_and_fails_foreign_ones() {
        struct Foreign;
        impl Resolver for Foreign {
            fn name(&self) -> &str {
                "foreign"
            }
            fn resolve(&mut self, _: &Query<'_>, _: &mut Context) -> Resolution {
                Resolution::Lookup(Payload::new("a job for another runtime"))
            }
        }
        let ex = Rc::new(LocalExecutor::new());
        let (tx, rx) = smol::channel::bounded(4);
        let mut lookups = Lookups::new(ex.clone(), tx);

        // A job of another type: failed at once, SERVFAIL, no task.
        let server = Server::new(Config::default(), Chain::new().with(Foreign), [2; 32]);
        let mut server = Core::new(server, None);
        for _ in 0..2 {
            client_query(&mut server, "x.test");
            let Some(Action::Lookup { id, job }) = server.poll_action() else {
                panic!("a lookup")
            };
            lookups.start(id, job, &mut server);
            let Some(Action::Reply { bytes, .. }) = server.poll_action() else {
                panic!("a reply at once")
            };
            let rcode = Message::from_octets(bytes).unwrap().header().rcode();
            assert_eq!(rcode, Rcode::SERVFAIL);
            assert!(lookups.tasks.is_empty());
        }

        // A job of ours runs on the executor and reports back; a cancelled one is dropped.
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = Dropped(dropped.clone());
        let pending = async move {
            let _guard = guard;
            smol::future::pending::<Outcome>().await
        };
        let mut server = Core::new(Server::new(Config::default(), Chain::new(), [3; 32]), None);
        lookups.start(
            LookupId(7),
            Payload::new(Job(Box::pin(pending))),
            &mut server,
        );
        let ready = async { Ok(Resolved::Pass) };
        lookups.start(LookupId(8), Payload::new(Job(Box::pin(ready))), &mut server);
        assert_eq!(lookups.tasks.len(), 2);
        let event = smol::block_on(ex.run(rx.recv())).unwrap();
        let Event::Lookup { id, result } = event else {
            panic!("a lookup's result")
        };
        assert_eq!(id, LookupId(8));
        assert!(matches!(
            result.downcast::<Outcome>(),
            Ok(Ok(Resolved::Pass))
        ));
        lookups.finished(id);
        assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
        lookups.cancel(LookupId(7));
        while ex.try_tick() {} // the executor drops a cancelled task's future on its next turn
        assert!(
            dropped.load(std::sync::atomic::Ordering::SeqCst),
            "the future is dropped"
        );
        assert!(lookups.tasks.is_empty());
    }

    #[test]
    fn owned_query_copies_the_query() {
        let q = OwnedQuery {
            name: "Web.svc.test".parse().unwrap(),
            qtype: Rtype::A,
            qclass: Class::IN,
            client: "127.0.0.1:1".parse().unwrap(),
            transport: Transport::Udp,
            dnssec_ok: false,
            checking_disabled: false,
            recursion_desired: true,
        };
        assert_eq!(q.first_label(), b"Web");
        let root = OwnedQuery {
            name: Name::root_bytes(),
            ..q
        };
        assert_eq!(root.first_label(), b"");
    }

    /// Lookups recorded with the codec replay to the same actions: answers, passes,
    /// errors and panics (a pass goes on to no one here: REFUSED), all through the journal.
    #[test]
    fn lookup_outcomes_record_and_replay_through_the_journal() {
        use names_core::journal::{
            encode_action, encode_input, same_action, write_start, Header, Input, Reader, Record,
            Replayer,
        };
        use std::time::Duration;

        let header = Header {
            names_version: "test".into(),
            workers: 1,
            config: Config::default(),
            settings: Vec::new(),
            files: Vec::new(),
        };
        let mut file = Vec::new();
        write_start(&mut file, &header);
        encode_input(
            &mut file,
            0,
            Duration::ZERO,
            &Input::Start { seed: [1; 32] },
        );
        let t0 = Instant::now();
        let mut server = Server::new(
            Config::default(),
            Chain::new().with(deferred(Test)),
            [1; 32],
        );
        let mut replies = 0;
        for (i, name) in [
            "ok7.test",
            "pass.test",
            "err.test",
            "panic.test",
            "OK9.test",
        ]
        .into_iter()
        .enumerate()
        {
            let at = Duration::from_millis(i as u64);
            let mut query = MessageBuilder::new_vec().question();
            let qname: Name<Vec<u8>> = name.parse().unwrap();
            query.push((&qname, Rtype::A)).unwrap();
            let query = query.finish();
            let from = Origin::Udp {
                listener: 0,
                peer: "127.0.0.1:5000".parse().unwrap(),
            };
            encode_input(
                &mut file,
                0,
                at,
                &Input::Client {
                    from,
                    bytes: &query,
                },
            );
            server.handle_client(t0 + at, from, &query);
            let mut pending = Vec::new();
            while let Some(action) = server.poll_action() {
                encode_action(&mut file, 0, at, &action);
                if let Action::Lookup { id, job } = action {
                    pending.push((id, job));
                }
            }
            for (id, job) in pending {
                let Ok(Job(future)) = job.downcast::<Job>() else {
                    panic!("a job of this runtime")
                };
                let result = Payload::new(smol::block_on(future));
                let encoded = OutcomeCodec.encode(&result).expect("encodable");
                let outcome = Some(&encoded[..]);
                encode_input(&mut file, 0, at, &Input::Lookup { id: id.0, outcome });
                server.handle_lookup(t0 + at, id, result);
                while let Some(action) = server.poll_action() {
                    replies += usize::from(matches!(action, Action::Reply { .. }));
                    encode_action(&mut file, 0, at, &action);
                }
            }
        }
        assert_eq!(replies, 5);

        let mut reader = Reader::new(&file[..]).unwrap();
        let mut replayer = Replayer::new(Instant::now(), 1, |_, seed| {
            Server::new(Config::default(), Chain::new().with(deferred(Test)), seed)
        });
        replayer.on_lookup(Box::new(|server, now, id, bytes| {
            let outcome = OutcomeCodec.decode(bytes).ok_or("not an outcome")?;
            server.handle_lookup(now, LookupId(id), outcome);
            Ok(())
        }));
        let mut compared = 0;
        while let Some(entry) = reader.next_entry().unwrap() {
            replayer.feed(&entry).unwrap();
            if let Record::Action(recorded) = &entry.record {
                let replayed = replayer.next_produced(0).expect("an action");
                assert!(
                    same_action(recorded, &replayed),
                    "{recorded:?} vs {replayed:?}"
                );
                compared += 1;
            }
        }
        assert_eq!(replayer.pending(0), 0);
        assert_eq!(compared, 10, "a lookup and a reply per query");
        assert_eq!(OutcomeCodec.decode(&[9]).map(|_| ()), None);
        assert_eq!(OutcomeCodec.decode(&[PASSED, 0]).map(|_| ()), None);
    }
}
