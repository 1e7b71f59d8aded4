//! The scrubbing rules one by one, poisoning attempts, and a property test.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, Rcode, Rtype, SecurityAlgorithm, TsigRcode};
use domain::base::{Message, MessageBuilder, Name, Record, Serial, ToName, Ttl};
use domain::rdata::dnssec::{RtypeBitmap, Timestamp};
use domain::rdata::tsig::Time48;
use domain::rdata::{
    Aaaa, AllRecordData, Cname, Dname, Ds, Mx, Ns, Nsec, Ptr, Rrsig, Soa, Srv, Tsig, A,
};

use super::{scrub, Scrubbed, MAX_CHAIN, MAX_RRSIGS};
use crate::record::Rr;

type Data = AllRecordData<Bytes, Name<Bytes>>;

fn n(s: &str) -> Name<Bytes> {
    s.parse().unwrap()
}

fn rr(owner: &str, ttl: u32, data: Data) -> Rr {
    Record::new(n(owner), Class::IN, Ttl::from_secs(ttl), data)
}

fn a(owner: &str, last: u8) -> Rr {
    rr(owner, 300, Data::A(A::new(Ipv4Addr::new(192, 0, 2, last))))
}

fn aaaa(owner: &str) -> Rr {
    rr(owner, 300, Data::Aaaa(Aaaa::new(Ipv6Addr::LOCALHOST)))
}

fn cname(owner: &str, target: &str) -> Rr {
    rr(owner, 300, Data::Cname(Cname::new(n(target))))
}

fn dname(owner: &str, target: &str) -> Rr {
    rr(owner, 300, Data::Dname(Dname::new(n(target))))
}

fn ns(owner: &str, target: &str) -> Rr {
    rr(owner, 300, Data::Ns(Ns::new(n(target))))
}

fn mx(owner: &str, target: &str) -> Rr {
    rr(owner, 300, Data::Mx(Mx::new(10, n(target))))
}

fn srv(owner: &str, target: &str) -> Rr {
    rr(owner, 300, Data::Srv(Srv::new(0, 0, 53, n(target))))
}

fn ptr(owner: &str, target: &str) -> Rr {
    rr(owner, 300, Data::Ptr(Ptr::new(n(target))))
}

fn soa(owner: &str) -> Rr {
    let t = Ttl::from_secs(60);
    let data = Soa::new(
        n("ns.example.com"),
        n("host.example.com"),
        Serial(1),
        t,
        t,
        t,
        t,
    );
    rr(owner, 300, Data::Soa(data))
}

fn ds(owner: &str) -> Rr {
    let data = Ds::new(
        1,
        SecurityAlgorithm::RSASHA256,
        2.into(),
        Bytes::from_static(b"ds"),
    )
    .unwrap();
    rr(owner, 300, Data::Ds(data))
}

fn nsec(owner: &str, next: &str) -> Rr {
    rr(
        owner,
        300,
        Data::Nsec(Nsec::new(
            n(next),
            RtypeBitmap::from_octets(Bytes::new()).unwrap(),
        )),
    )
}

fn rrsig(owner: &str, covered: Rtype, tag: u16) -> Rr {
    let data = Rrsig::new(
        covered,
        SecurityAlgorithm::RSASHA256,
        2,
        Ttl::from_secs(300),
        Timestamp::from(2),
        Timestamp::from(1),
        tag,
        n("example.com"),
        Bytes::from_static(b"sig"),
    )
    .unwrap();
    rr(owner, 300, Data::Rrsig(data))
}

fn tsig() -> Rr {
    let data = Tsig::new(
        n("hmac-sha256"),
        Time48::from_u64(0),
        300,
        Bytes::from_static(b"mac"),
        1,
        TsigRcode::NOERROR,
        Bytes::new(),
    )
    .unwrap();
    Record::new(
        n("key.example.com"),
        Class::ANY,
        Ttl::from_secs(0),
        data.into(),
    )
}

/// A reply to `question` (or none) carrying the three sections.
struct Reply<'a> {
    question: Option<(&'a str, Rtype, Class)>,
    qr: bool,
    opcode: Opcode,
    rcode: Rcode,
    answer: Vec<Rr>,
    authority: Vec<Rr>,
    additional: Vec<Rr>,
}

impl<'a> Reply<'a> {
    fn to(qname: &'a str, qtype: Rtype) -> Self {
        Reply {
            question: Some((qname, qtype, Class::IN)),
            qr: true,
            opcode: Opcode::QUERY,
            rcode: Rcode::NOERROR,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }

    fn answer(mut self, records: impl IntoIterator<Item = Rr>) -> Self {
        self.answer.extend(records);
        self
    }

    fn authority(mut self, records: impl IntoIterator<Item = Rr>) -> Self {
        self.authority.extend(records);
        self
    }

    fn additional(mut self, records: impl IntoIterator<Item = Rr>) -> Self {
        self.additional.extend(records);
        self
    }

    fn build(&self) -> Message<Bytes> {
        let mut msg = MessageBuilder::new_vec();
        msg.header_mut().set_qr(self.qr);
        msg.header_mut().set_aa(true);
        msg.header_mut().set_opcode(self.opcode);
        msg.header_mut().set_rcode(self.rcode);
        let mut msg = msg.question();
        if let Some((name, qtype, qclass)) = self.question {
            msg.push((n(name), qtype, qclass)).unwrap();
        }
        let mut msg = msg.answer();
        self.answer.iter().for_each(|r| msg.push(r).unwrap());
        let mut msg = msg.authority();
        self.authority.iter().for_each(|r| msg.push(r).unwrap());
        let mut msg = msg.additional();
        self.additional.iter().for_each(|r| msg.push(r).unwrap());
        Message::from_octets(Bytes::from(msg.finish())).unwrap()
    }

    /// Scrubbed for the question `qname`/`qtype` of class IN.
    fn scrub(&self, qname: &str, qtype: Rtype) -> Option<Scrubbed> {
        scrub(
            &n(qname),
            qtype,
            Class::IN,
            &self.build(),
            &Name::root_bytes(),
        )
    }

    fn scrubbed(&self) -> Scrubbed {
        let (qname, qtype, _) = self.question.unwrap();
        self.scrub(qname, qtype).expect("a usable reply")
    }
}

/// The records as `owner type` strings, for readable comparisons.
fn show(records: &[Rr]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {}", r.owner(), r.rtype(), r.data()))
        .collect()
}

#[test]
fn a_reply_that_is_not_for_our_question_is_not_used() {
    let good = Reply::to("www.example.com", Rtype::A).answer([a("www.example.com", 1)]);
    assert!(good.scrub("www.example.com", Rtype::A).is_some());
    assert!(
        good.scrub("WWW.Example.COM", Rtype::A).is_some(),
        "names compare without case"
    );
    assert!(good.scrub("other.example.com", Rtype::A).is_none());
    assert!(good.scrub("www.example.com", Rtype::AAAA).is_none());
    assert!(scrub(
        &n("www.example.com"),
        Rtype::A,
        Class::CH,
        &good.build(),
        &Name::root_bytes()
    )
    .is_none());
    let mut none = Reply::to("www.example.com", Rtype::A).answer([a("www.example.com", 1)]);
    none.question = None;
    assert!(none.scrub("www.example.com", Rtype::A).is_none());
}

#[test]
fn a_query_or_another_opcode_is_not_used() {
    let mut query = Reply::to("www.example.com", Rtype::A).answer([a("www.example.com", 1)]);
    query.qr = false;
    assert!(query.scrub("www.example.com", Rtype::A).is_none());
    let mut notify = Reply::to("www.example.com", Rtype::A);
    notify.opcode = Opcode::NOTIFY;
    assert!(notify.scrub("www.example.com", Rtype::A).is_none());
}

#[test]
fn two_questions_or_unreadable_records_are_not_used() {
    let mut msg = MessageBuilder::new_vec();
    msg.header_mut().set_qr(true);
    let mut msg = msg.question();
    msg.push((n("www.example.com"), Rtype::A)).unwrap();
    msg.push((n("www.example.com"), Rtype::A)).unwrap();
    let two = Message::from_octets(Bytes::from(msg.finish())).unwrap();
    assert!(scrub(
        &n("www.example.com"),
        Rtype::A,
        Class::IN,
        &two,
        &Name::root_bytes()
    )
    .is_none());

    let good = Reply::to("www.example.com", Rtype::A).answer([a("www.example.com", 1)]);
    let wire = good.build().into_octets();
    let cut = Message::from_octets(wire.slice(..wire.len() - 2)).unwrap();
    assert!(scrub(
        &n("www.example.com"),
        Rtype::A,
        Class::IN,
        &cut,
        &Name::root_bytes()
    )
    .is_none());
}

#[test]
fn header_bits_and_rcode_are_kept() {
    let mut nx = Reply::to("nx.example.com", Rtype::A).authority([soa("example.com")]);
    nx.rcode = Rcode::NXDOMAIN;
    let out = nx.scrubbed();
    assert_eq!(out.rcode, Rcode::NXDOMAIN.into());
    assert!(out.aa);
    assert!(!out.ad);
    assert_eq!(show(&out.authority), show(&[soa("example.com")]));
}

#[test]
fn answer_records_of_other_names_and_types_are_dropped() {
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([
            a("other.example.com", 9),
            a("www.example.com", 1),
            aaaa("www.example.com"),
            a("www.example.com", 2),
        ])
        .scrubbed();
    assert_eq!(
        show(&out.answer),
        show(&[a("www.example.com", 1), a("www.example.com", 2)])
    );
    assert_eq!(out.dropped, 2);
}

#[test]
fn a_cname_chain_is_kept_in_chain_order() {
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([
            a("c.example.com", 1),
            cname("b.example.com", "c.example.com"),
            cname("www.example.com", "b.example.com"),
        ])
        .scrubbed();
    let want = [
        cname("www.example.com", "b.example.com"),
        cname("b.example.com", "c.example.com"),
        a("c.example.com", 1),
    ];
    assert_eq!(show(&out.answer), show(&want));
    assert_eq!(out.dropped, 0);
}

#[test]
fn a_cname_question_stops_at_the_cname() {
    let out = Reply::to("www.example.com", Rtype::CNAME)
        .answer([
            cname("www.example.com", "b.example.com"),
            a("b.example.com", 1),
        ])
        .scrubbed();
    assert_eq!(
        show(&out.answer),
        show(&[cname("www.example.com", "b.example.com")])
    );
}

#[test]
fn an_any_or_rrsig_question_keeps_every_type_or_every_signature_at_the_name() {
    let records = [
        a("www.example.com", 1),
        aaaa("www.example.com"),
        rrsig("www.example.com", Rtype::A, 1),
        rrsig("www.example.com", Rtype::TXT, 1),
        a("other.example.com", 2),
    ];
    let any = Reply::to("www.example.com", Rtype::ANY)
        .answer(records.clone())
        .scrubbed();
    // Each RRset is followed by its signatures.
    let want = [records[0].clone(), records[2].clone(), records[1].clone()];
    assert_eq!(show(&any.answer), show(&want));
    let sigs = Reply::to("www.example.com", Rtype::RRSIG)
        .answer(records.clone())
        .scrubbed();
    assert_eq!(show(&sigs.answer), show(&records[2..4]));
}

#[test]
fn a_chain_longer_than_the_bound_is_cut() {
    let names: Vec<String> = (0..=MAX_CHAIN + 2)
        .map(|i| format!("n{i}.example.com"))
        .collect();
    let mut records: Vec<Rr> = names.windows(2).map(|w| cname(&w[0], &w[1])).collect();
    records.push(a(names.last().unwrap(), 1));
    let out = Reply::to(&names[0], Rtype::A).answer(records).scrubbed();
    assert_eq!(out.answer.len(), MAX_CHAIN);
    assert!(out.answer.iter().all(|r| r.rtype() == Rtype::CNAME));
}

#[test]
fn a_cname_loop_ends() {
    let out = Reply::to("a.example.com", Rtype::A)
        .answer([
            cname("a.example.com", "b.example.com"),
            cname("b.example.com", "a.example.com"),
        ])
        .scrubbed();
    assert_eq!(out.answer.len(), 2);
}

#[test]
fn a_cname_rrset_of_two_records_makes_the_reply_unusable() {
    let reply = Reply::to("a.example.com", Rtype::A).answer([
        cname("a.example.com", "b.example.com"),
        cname("a.example.com", "c.example.com"),
    ]);
    assert!(reply.scrub("a.example.com", Rtype::A).is_none());
}

#[test]
fn a_dname_with_its_cname_is_kept() {
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([
            dname("example.com", "example.net"),
            cname("www.example.com", "www.example.net"),
            a("www.example.net", 1),
        ])
        .scrubbed();
    assert_eq!(out.answer.len(), 3);
    assert_eq!(out.dropped, 0);
}

#[test]
fn a_dname_without_its_cname_or_with_a_wrong_one_gets_a_synthesised_one() {
    let want = [
        dname("example.com", "example.net"),
        cname("www.example.com", "www.example.net"),
        a("www.example.net", 1),
    ];
    let missing = Reply::to("www.example.com", Rtype::A)
        .answer([dname("example.com", "example.net"), a("www.example.net", 1)])
        .scrubbed();
    assert_eq!(show(&missing.answer), show(&want));
    assert_eq!(missing.dropped, 0);
    let wrong = Reply::to("www.example.com", Rtype::A)
        .answer([
            dname("example.com", "example.net"),
            cname("www.example.com", "evil.example.org"),
            a("evil.example.org", 66),
            a("www.example.net", 1),
        ])
        .scrubbed();
    assert_eq!(show(&wrong.answer), show(&want));
    assert_eq!(wrong.dropped, 2);
}

#[test]
fn a_dname_making_a_name_too_long_ends_the_chain() {
    // 4 labels of 60 under a DNAME whose target adds 60 more: over 255 octets.
    let long = format!("{0}.{0}.{0}.example.com", "a".repeat(60));
    let target = format!("{}.example.net", "b".repeat(60));
    let mut reply = Reply::to(&long, Rtype::A).answer([
        dname("example.com", &target),
        cname(&long, "www.example.org"),
        a("www.example.org", 1),
    ]);
    reply.rcode = Rcode::YXDOMAIN;
    let out = reply.scrubbed();
    assert_eq!(out.rcode, Rcode::YXDOMAIN.into());
    assert_eq!(show(&out.answer), show(&[dname("example.com", &target)]));
}

#[test]
fn a_dname_rrset_of_two_records_makes_the_reply_unusable() {
    let reply = Reply::to("www.example.com", Rtype::A).answer([
        dname("example.com", "example.net"),
        dname("example.com", "example.org"),
        a("www.example.net", 1),
    ]);
    assert!(reply.scrub("www.example.com", Rtype::A).is_none());
}

#[test]
fn a_dname_rewriting_into_itself_is_followed_at_most_once() {
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([
            dname("example.com", "x.example.com"),
            a("www.x.example.com", 1),
        ])
        .scrubbed();
    assert_eq!(
        show(&out.answer),
        show(&[
            dname("example.com", "x.example.com"),
            cname("www.example.com", "www.x.example.com")
        ])
    );
}

#[test]
fn a_dname_not_above_the_name_is_dropped() {
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([
            dname("www.example.com", "example.net"),
            dname("example.org", "example.net"),
            a("www.example.com", 1),
        ])
        .scrubbed();
    assert_eq!(show(&out.answer), show(&[a("www.example.com", 1)]));
}

#[test]
fn records_of_another_class_opt_and_tsig_are_dropped() {
    let mut chaos = a("www.example.com", 2);
    chaos.set_class(Class::CH);
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([a("www.example.com", 1), chaos])
        .additional([tsig()])
        .scrubbed();
    assert_eq!(show(&out.answer), show(&[a("www.example.com", 1)]));
    assert!(out.additional.is_empty());
    assert_eq!(out.dropped, 2);
}

#[test]
fn duplicates_are_merged_and_an_rrset_gets_its_lowest_ttl() {
    let mut short = a("www.example.com", 1);
    short.set_ttl(Ttl::from_secs(10));
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([a("www.example.com", 1), a("www.example.com", 2), short])
        .scrubbed();
    assert_eq!(out.answer.len(), 2);
    assert!(out.answer.iter().all(|r| r.ttl() == Ttl::from_secs(10)));
    assert_eq!(out.dropped, 1);
}

#[test]
fn rrsigs_are_capped_per_rrset() {
    let sigs = (0..20).map(|tag| rrsig("www.example.com", Rtype::A, tag));
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([a("www.example.com", 1)])
        .answer(sigs)
        .answer([rrsig("www.example.com", Rtype::MX, 1)])
        .scrubbed();
    assert_eq!(out.answer.len(), 1 + MAX_RRSIGS);
    assert_eq!(out.dropped, 20 - MAX_RRSIGS + 1);
}

#[test]
fn authority_keeps_ns_soa_ds_of_the_name_or_above_with_their_dnssec_records() {
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([a("www.example.com", 1)])
        .authority([
            ns("example.com", "ns.example.com"),
            rrsig("example.com", Rtype::NS, 1),
            soa("example.com"),
            ds("www.example.com"),
            nsec("example.com", "www.example.com"),
            rrsig("example.com", Rtype::NSEC, 1),
            a("ns.example.com", 3),
            ptr("example.com", "x.example.com"),
            rrsig("example.com", Rtype::A, 1),
            ns("sub.www.example.com", "ns.example.com"),
        ])
        .scrubbed();
    let want = [
        ns("example.com", "ns.example.com"),
        rrsig("example.com", Rtype::NS, 1),
        soa("example.com"),
        ds("www.example.com"),
        nsec("example.com", "www.example.com"),
        rrsig("example.com", Rtype::NSEC, 1),
    ];
    assert_eq!(show(&out.authority), show(&want));
}

#[test]
fn nsec_outside_every_kept_zone_is_dropped() {
    let out = Reply::to("nx.example.com", Rtype::A)
        .authority([soa("example.com"), nsec("a.example.org", "b.example.org")])
        .scrubbed();
    assert_eq!(show(&out.authority), show(&[soa("example.com")]));
}

#[test]
fn after_a_chain_authority_is_for_the_last_name() {
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([cname("www.example.com", "nx.example.net")])
        .authority([
            soa("example.net"),
            soa("example.com"),
            ns("example.com", "ns.example.com"),
        ])
        .scrubbed();
    assert_eq!(show(&out.authority), show(&[soa("example.net")]));
}

#[test]
fn additional_keeps_addresses_of_names_kept_records_point_to() {
    let out = Reply::to("example.com", Rtype::MX)
        .answer([mx("example.com", "mail.example.com")])
        .authority([ns("example.com", "ns.example.org")])
        .additional([
            a("mail.example.com", 1),
            aaaa("mail.example.com"),
            rrsig("mail.example.com", Rtype::A, 1),
            a("ns.example.org", 2),
            a("other.example.com", 3),
            ptr("mail.example.com", "x.example.com"),
            rrsig("mail.example.com", Rtype::PTR, 1),
        ])
        .scrubbed();
    let want = [
        a("mail.example.com", 1),
        aaaa("mail.example.com"),
        rrsig("mail.example.com", Rtype::A, 1),
        a("ns.example.org", 2),
    ];
    assert_eq!(show(&out.additional), show(&want));
    let srv = Reply::to("_dns._udp.example.com", Rtype::SRV)
        .answer([srv("_dns._udp.example.com", "dns.example.com")])
        .additional([a("dns.example.com", 1)])
        .scrubbed();
    assert_eq!(srv.additional.len(), 1);
}

// Poisoning attempts: what an upstream plants beside a true answer never survives.

#[test]
fn poison_ns_and_address_of_an_unrelated_zone_in_authority_and_additional() {
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([a("www.example.com", 1)])
        .authority([
            ns("victim.org", "ns.evil.net"),
            ns("com", "ns.evil.net"),
            a("victim.org", 66),
        ])
        .additional([a("ns.evil.net", 66), a("victim.org", 66)])
        .scrubbed();
    assert_eq!(show(&out.answer), show(&[a("www.example.com", 1)]));
    // NS for "com" is an ancestor's: it may stay, and its glue with it.
    assert_eq!(show(&out.authority), show(&[ns("com", "ns.evil.net")]));
    assert_eq!(show(&out.additional), show(&[a("ns.evil.net", 66)]));
    assert!(!show(&out.authority)
        .iter()
        .chain(&show(&out.additional))
        .any(|r| r.contains("victim")));
}

#[test]
fn poison_a_cname_leaving_the_tree_carries_an_unrelated_address() {
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([
            cname("www.example.com", "cdn.example.net"),
            a("cdn.example.net", 1),
            a("www.victim.org", 66),
            a("cdn.example.net.victim.org", 66),
        ])
        .authority([
            ns("victim.org", "ns.victim.org"),
            ns("example.net", "ns.example.net"),
        ])
        .scrubbed();
    let want = [
        cname("www.example.com", "cdn.example.net"),
        a("cdn.example.net", 1),
    ];
    assert_eq!(show(&out.answer), show(&want));
    assert_eq!(
        show(&out.authority),
        show(&[ns("example.net", "ns.example.net")])
    );
}

#[test]
fn poison_glue_for_an_unrelated_name() {
    let out = Reply::to("example.com", Rtype::NS)
        .answer([ns("example.com", "ns1.example.com")])
        .additional([
            a("ns1.example.com", 1),
            a("www.victim.org", 66),
            aaaa("victim.org"),
        ])
        .scrubbed();
    assert_eq!(show(&out.additional), show(&[a("ns1.example.com", 1)]));
    assert_eq!(out.dropped, 2);
}

#[test]
fn poison_a_second_copy_of_the_answer_rrset() {
    let mut long = a("www.example.com", 1);
    long.set_ttl(Ttl::from_secs(86400));
    let out = Reply::to("www.example.com", Rtype::A)
        .answer([
            a("www.example.com", 1),
            long.clone(),
            a("www.example.com", 66),
            long,
        ])
        .scrubbed();
    // One RRset: the copies merged, the TTL not raised; a record within it is the
    // upstream's word (trust ranking decides what it replaces).
    assert_eq!(
        show(&out.answer),
        show(&[a("www.example.com", 1), a("www.example.com", 66)])
    );
    assert!(out.answer.iter().all(|r| r.ttl() == Ttl::from_secs(300)));
    assert_eq!(out.dropped, 2);
}

mod property {
    //! Random replies from a small pool of names and types: the scrubbed reply is a subset
    //! of the input (up to TTLs and synthesised CNAMEs), every kept answer record lies on
    //! the chain, and nothing panics.

    use proptest::prelude::*;

    use super::*;

    const NAMES: &[&str] = &[
        ".",
        "com",
        "example.com",
        "www.example.com",
        "a.www.example.com",
        "example.net",
        "www.example.net",
        "victim.org",
    ];

    fn name() -> impl Strategy<Value = &'static str> {
        proptest::sample::select(NAMES)
    }

    fn record() -> impl Strategy<Value = Rr> {
        (name(), name(), 0..12u8, 1..400u32).prop_map(|(owner, target, kind, ttl)| {
            let mut r = match kind {
                0 => a(owner, 66),
                1 => aaaa(owner),
                2 | 3 => cname(owner, target),
                4 => dname(owner, target),
                5 => ns(owner, target),
                6 => mx(owner, target),
                7 => soa(owner),
                8 => nsec(owner, target),
                9 => rrsig(owner, Rtype::A, ttl as u16),
                10 => rrsig(owner, Rtype::CNAME, 1),
                _ => ptr(owner, target),
            };
            r.set_ttl(Ttl::from_secs(ttl));
            r
        })
    }

    fn same(x: &Rr, y: &Rr) -> bool {
        x.owner() == y.owner() && x.class() == y.class() && x.data() == y.data()
    }

    proptest! {
        #[test]
        fn scrubbed_is_a_subset_on_the_chain(
            qname in name(),
            qtype in proptest::sample::select(&[Rtype::A, Rtype::CNAME, Rtype::NS, Rtype::MX, Rtype::ANY][..]),
            answer in proptest::collection::vec(record(), 0..12),
            authority in proptest::collection::vec(record(), 0..6),
            additional in proptest::collection::vec(record(), 0..6),
            other in name(),
        ) {
            let reply = Reply::to(qname, qtype).answer(answer.clone()).authority(authority.clone()).additional(additional.clone());
            let msg = reply.build();
            if !n(other).name_eq(&n(qname)) {
                prop_assert!(scrub(&n(other), qtype, Class::IN, &msg, &Name::root_bytes()).is_none());
            }
            let out = scrub(&n(qname), qtype, Class::IN, &msg, &Name::root_bytes());
            let Some(out) = out else {
                // Only a CNAME or DNAME RRset of several records makes the reply unusable.
                prop_assert!(answer.iter().any(|r| matches!(r.rtype(), Rtype::CNAME | Rtype::DNAME)));
                return Ok(());
            };
            let kept = out.answer.len() + out.authority.len() + out.additional.len();
            let mut synthesised = 0;
            // Walk the answer: each record's owner is the current name of the chain, a
            // DNAME's owner is above it.
            let mut sname = n(qname);
            let mut dnames: Vec<Rr> = Vec::new();
            let mut signed: Option<Rr> = None;
            for r in &out.answer {
                // An RRSIG follows the RRset it signs.
                let signs = |s: &Rr| match r.data() {
                    Data::Rrsig(sig) => s.owner() == r.owner() && s.rtype() == sig.type_covered(),
                    _ => false,
                };
                let on_chain = r.owner().name_eq(&sname)
                    || (r.rtype() == Rtype::DNAME && sname.ends_with(r.owner()))
                    || signed.as_ref().is_some_and(signs);
                prop_assert!(on_chain, "{} off the chain at {}", r.owner(), sname);
                if !answer.iter().any(|x| same(x, r)) {
                    // Only a CNAME made from a kept DNAME may be new.
                    prop_assert_eq!(r.rtype(), Rtype::CNAME);
                    prop_assert!(dnames.iter().any(|d| sname.ends_with(d.owner())));
                    synthesised += 1;
                }
                if r.rtype() != Rtype::RRSIG {
                    signed = Some(r.clone());
                }
                match r.data() {
                    Data::Cname(c) if qtype != Rtype::CNAME => sname = c.cname().clone(),
                    Data::Dname(_) => dnames.push(r.clone()),
                    _ => {}
                }
            }
            for r in &out.authority {
                prop_assert!(authority.iter().any(|x| same(x, r)));
                prop_assert!(matches!(r.rtype(), Rtype::NS | Rtype::SOA | Rtype::NSEC | Rtype::RRSIG));
            }
            for r in &out.additional {
                prop_assert!(additional.iter().any(|x| same(x, r)));
                prop_assert!(matches!(r.rtype(), Rtype::A | Rtype::AAAA | Rtype::RRSIG));
            }
            let input = answer.len() + authority.len() + additional.len();
            prop_assert_eq!(out.dropped + kept - synthesised, input);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(msg) = Message::from_octets(Bytes::from(bytes)) {
                let _ = scrub(&n("www.example.com"), Rtype::A, Class::IN, &msg, &Name::root_bytes());
            }
        }
    }
}

#[test]
fn a_flood_of_records_is_scrubbed_in_one_pass() {
    // A full TCP reply's worth: thousands of distinct addresses at the name, and as many
    // RRsets with an RRSIG each at other names in every section (the quadratic cases).
    let mut reply = Reply::to("www.example.com", Rtype::A);
    for i in 0..1500u16 {
        let [hi, lo] = i.to_be_bytes();
        let data = Data::A(A::new(Ipv4Addr::new(10, 0, hi, lo)));
        reply.answer.push(rr("www.example.com", 300, data));
        let owner = format!("n{i}.example.com");
        reply.authority.push(rrsig(&owner, Rtype::NS, i));
        reply.additional.push(a(&owner, 1));
        reply.additional.push(rrsig(&owner, Rtype::A, i));
    }
    let out = reply.scrubbed();
    assert_eq!(out.answer.len(), 1500);
    assert!(out.authority.is_empty() && out.additional.is_empty());
    assert_eq!(out.dropped, 4500);
}

#[test]
fn records_outside_the_bailiwick_are_dropped_everywhere() {
    // A com server refers to example.com, with glue in and out of com, and tries to slip
    // in an NS set for a zone it does not serve.
    let referral = Reply::to("www.example.com", Rtype::A)
        .authority([
            ns("example.com", "ns1.example.com"),
            ns("example.com", "ns.example.net"),
            ns("com", "evil.org"),
            ns("org", "evil.org"),
        ])
        .additional([
            a("ns1.example.com", 1),
            a("ns.example.net", 2),
            a("evil.org", 3),
        ])
        .build();
    let (qname, com) = (n("www.example.com"), n("com"));
    let kept = scrub(&qname, Rtype::A, Class::IN, &referral, &com).unwrap();
    assert_eq!(
        show(&kept.authority),
        [
            "example.com NS ns1.example.com.",
            "example.com NS ns.example.net.",
            "com NS evil.org."
        ]
    );
    assert_eq!(show(&kept.additional), ["ns1.example.com A 192.0.2.1"]);
    // The root's bailiwick (a forwarder's) keeps the glue of net and org.
    let all = scrub(&qname, Rtype::A, Class::IN, &referral, &Name::root_bytes()).unwrap();
    assert_eq!(all.additional.len(), 3);
    // An answer's chain stops where it leaves the zone.
    let answer = Reply::to("www.example.com", Rtype::A)
        .answer([
            cname("www.example.com", "www.example.org"),
            a("www.example.org", 9),
        ])
        .build();
    let kept = scrub(&qname, Rtype::A, Class::IN, &answer, &com).unwrap();
    assert_eq!(
        show(&kept.answer),
        ["www.example.com CNAME www.example.org."]
    );
}
