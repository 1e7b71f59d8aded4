//! `Synth`: the seed's DynamicResolver, generalised. `PREFIX<N>.anything A` -> `NET.N`.

use std::net::Ipv4Addr;

use std::sync::Arc;

use domain::base::iana::{Class, Rcode, Rtype};

use super::{Context, Query, Resolution, Resolver};
use crate::parse::ConfigError;
use crate::wire::{Ttls, WireAnswer, WireRecords};

/// Time to live of synthesised records.
pub const SYNTH_TTL: u32 = 60;

/// One rule: a first label `PREFIX` + decimal N in 0..=255 maps to `NET.N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthRule {
    /// The first label's prefix, matched ASCII case-insensitively (`workstation`).
    pub prefix: String,
    /// The first three octets of the answered address (`172.0.2`).
    pub net: [u8; 3],
}

impl SynthRule {
    /// Parses `PREFIX=NET`, e.g. `workstation=172.0.2`.
    pub fn parse(spec: &str) -> Result<SynthRule, ConfigError> {
        let bad = |why: &str| {
            ConfigError::new(format!("--synth {spec:?}: {why} (expected PREFIX=A.B.C)"))
        };
        let (prefix, net) = spec.split_once('=').ok_or_else(|| bad("no '='"))?;
        if prefix.is_empty()
            || prefix.len() > 59
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad(
                "the prefix must be 1 to 59 letters, digits, '-' or '_'",
            ));
        }
        let octets: Vec<&str> = net.split('.').collect();
        if octets.len() != 3 {
            return Err(bad("the network must be three octets"));
        }
        let mut out = [0u8; 3];
        for (slot, text) in out.iter_mut().zip(octets) {
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("octets are decimal numbers"));
            }
            *slot = text.parse().map_err(|_| bad("octets are at most 255"))?;
        }
        Ok(SynthRule {
            prefix: prefix.to_string(),
            net: out,
        })
    }
}

/// Answers `A` queries whose first label matches a rule; passes everything else.
#[derive(Clone, Debug, Default)]
pub struct Synth {
    rules: Vec<SynthRule>,
    /// Per rule, the encoded answer for each N, made on first use. The owner is encoded
    /// as "the question name", so one answer serves every name with that number.
    answers: Vec<Vec<Option<Arc<WireRecords>>>>,
}

impl Synth {
    /// A resolver applying `rules` in order; the first that matches answers.
    pub fn new(rules: Vec<SynthRule>) -> Synth {
        let answers = rules.iter().map(|_| vec![None; 256]).collect();
        Synth { rules, answers }
    }

    fn wire_answer(
        &mut self,
        rule: usize,
        n: u8,
        q: &Query<'_>,
        now: std::time::Instant,
    ) -> Option<WireAnswer> {
        let slot = &mut self.answers[rule][usize::from(n)];
        if slot.is_none() {
            let [a, b, c] = self.rules[rule].net;
            let rr = q.record_a(SYNTH_TTL, Ipv4Addr::new(a, b, c, n));
            let records = WireRecords::build(
                &[],
                q.qname(),
                &[&rr],
                &[],
                Rcode::NOERROR.into(),
                false,
                true,
                now,
                |t| t,
            )?;
            *slot = Some(Arc::new(records));
        }
        Some(WireAnswer {
            records: slot.clone()?,
            ttls: Ttls::Fixed(SYNTH_TTL),
        })
    }
}

impl Resolver for Synth {
    fn name(&self) -> &str {
        "synth"
    }

    fn resolve(&mut self, q: &Query<'_>, cx: &mut Context) -> Resolution {
        if q.qtype() != Rtype::A || q.qclass() != Class::IN {
            return Resolution::Pass;
        }
        for i in 0..self.rules.len() {
            if let Some(n) = q.first_label_number(&self.rules[i].prefix) {
                if let Some(answer) = self.wire_answer(i, n, q, cx.now()) {
                    return Resolution::Wire(answer);
                }
                let [a, b, c] = self.rules[i].net;
                return Resolution::answer([q.record_a(SYNTH_TTL, Ipv4Addr::new(a, b, c, n))]);
            }
        }
        Resolution::Pass
    }
}
