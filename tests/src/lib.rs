//! The one test harness of the workspace: what the end-to-end tests, the core's tests,
//! the simulation and the fuzz targets share. One module per job:
//!
//! * [`process`]: finds (or builds) the real `names` binary, starts and stops
//!   `names serve` ([`Server`]), runs one-shot commands and `dig` with deadlines.
//! * [`upstream`]: [`FakeUpstream`], a programmable upstream over loopback UDP and TCP.
//! * [`loopback`]: [`Hierarchy`], a DNS tree (root, TLDs, second-level zones and odd
//!   servers) of real processes on loopback addresses at port 53, for the end-to-end
//!   recursion tests.
//! * [`net`]: tiny UDP and TCP clients with deadlines.
//! * [`build`]: message builders (with `domain` directly) and TCP framing.
//! * [`mod@parse`]: reply parsing for asserts.
//! * [`drive`]: driving a sans-IO `names_core::Server` by hand: fake time, the standard
//!   chains, sorting its actions.
//! * [`sim`]: the simulated world (clients, upstreams, a spoofer, a lossy network) that
//!   the fault simulation, the scenario fuzzer and the protocol tests drive.
//! * [`fuzz`]: the fuzz bodies of `fuzz/` and their `Arbitrary` scenarios.
//! * [`mod@hierarchy`]: a DNS hierarchy in memory (authoritative servers by address, some
//!   misbehaving) for the recursor's tests, and a driver playing its runtime.
//! * [`rpl`]: Unbound's replay format (`.rpl`) parsed, and played against the real
//!   binary with fake authoritative servers on loopback.
//! * [`scenario`]: Unbound-style scenarios as data: canned upstream replies by question,
//!   expected client replies.
//!
//! Every wait has a deadline and every loop is bounded, so a broken server makes tests
//! fail instead of hang. The end-to-end helpers are re-exported at the root.

pub mod build;
pub mod drive;
pub mod fuzz;
pub mod hierarchy;
pub mod loopback;
pub mod net;
pub mod parse;
pub mod process;
pub mod rpl;
pub mod scenario;
pub mod sim;
pub mod upstream;

pub use build::*;
pub use domain::base::iana::{Opcode, Rcode};
pub use domain::base::Rtype;
pub use loopback::Hierarchy;
pub use net::*;
pub use parse::*;
pub use process::*;
pub use upstream::*;
