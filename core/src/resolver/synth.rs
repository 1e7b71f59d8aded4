//! `Synth`: the seed's DynamicResolver, generalised. `PREFIX<N>.anything A` -> `NET.N`.

use std::net::Ipv4Addr;

use domain::base::iana::{Class, Rcode, Rtype};
use domain::rdata::A;

use super::{Answer, Context, Query, Resolution, Resolver};
use crate::parse::ConfigError;
use crate::wire::Prebuilt;

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
    answers: Vec<Vec<Option<Prebuilt>>>,
}

impl Synth {
    /// A resolver applying `rules` in order; the first that matches answers.
    pub fn new(rules: Vec<SynthRule>) -> Synth {
        let answers = rules.iter().map(|_| vec![None; 256]).collect();
        Synth { rules, answers }
    }

    /// The answer for number `n` of `rule`, encoded on first use.
    fn prebuilt(&mut self, rule: usize, n: u8, q: &Query<'_>) -> Option<Prebuilt> {
        let slot = &mut self.answers[rule][usize::from(n)];
        if slot.is_none() {
            let [a, b, c] = self.rules[rule].net;
            let rr = q.record(SYNTH_TTL, A::new(Ipv4Addr::new(a, b, c, n)));
            let answer = Answer {
                answer: vec![rr],
                authoritative: true,
                ..Answer::new(Rcode::NOERROR.into())
            };
            *slot = Some(Prebuilt::new(q.qname(), &answer)?);
        }
        slot.clone()
    }
}

/// If `label` is `prefix` (ASCII case-insensitive) followed by a decimal number in 0..=255
/// and nothing else, that number.
fn label_number(label: &[u8], prefix: &str) -> Option<u8> {
    let (head, digits) = label.split_at_checked(prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix.as_bytes())
        || digits.is_empty()
        || digits.len() > 3
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    u8::try_from(n).ok()
}

impl Resolver for Synth {
    fn name(&self) -> &str {
        "synth"
    }

    fn resolve(&mut self, q: &Query<'_>, _cx: &mut Context) -> Resolution {
        if q.qtype() != Rtype::A || q.qclass() != Class::IN {
            return Resolution::Pass;
        }
        for i in 0..self.rules.len() {
            if let Some(n) = label_number(q.first_label(), &self.rules[i].prefix) {
                if let Some(prebuilt) = self.prebuilt(i, n, q) {
                    return Resolution::Prebuilt(prebuilt);
                }
                let [a, b, c] = self.rules[i].net;
                return Resolution::answer(
                    [q.record(SYNTH_TTL, A::new(Ipv4Addr::new(a, b, c, n)))],
                );
            }
        }
        Resolution::Pass
    }
}
