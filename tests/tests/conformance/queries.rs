//! The generated query set: every owner of the zone files, names below and beside them, a
//! list of types, and the variants (case, EDNS, DO, CD, RD, TCP, classes, opcodes, malformed
//! messages), each able to say the `dig` command that asks it again.

use domain::base::iana::Class;
use names_tests::*;

/// The types every name is asked for (RFC 8482 ANY and odd types included).
pub const TYPES: &[&str] = &[
    "A", "NS", "CNAME", "SOA", "PTR", "HINFO", "MX", "TXT", "AAAA", "SRV", "NAPTR", "DS", "SSHFP",
    "RRSIG", "NSEC", "DNSKEY", "TLSA", "SVCB", "HTTPS", "CAA", "DNAME", "NULL", "ANY",
];

/// Types asked only of the owners themselves: meta, obsolete and unassigned ones.
pub const ODD_TYPES: &[u16] = &[0, 3, 41, 62, 249, 250, 251, 252, 253, 254, 65280, 65535];

/// How a query travels and what it carries besides its question.
#[derive(Clone, Debug)]
pub struct Query {
    /// Presentation form, absolute.
    pub name: String,
    pub qtype: u16,
    pub class: u16,
    pub opcode: u8,
    pub rd: bool,
    pub cd: bool,
    /// UDP payload size and DO bit of the OPT record; `None`: no EDNS.
    pub edns: Option<(u16, bool)>,
    pub tcp: bool,
    /// A malformed message sent as is (the fields above then only describe it).
    pub raw: Option<Vec<u8>>,
}

impl Query {
    fn new(name: &str, qtype: u16) -> Query {
        Query {
            name: name.to_string(),
            qtype,
            class: Class::IN.to_int(),
            opcode: 0,
            rd: false,
            cd: false,
            edns: Some((1232, false)),
            tcp: false,
            raw: None,
        }
    }

    /// An A question for `name` in `class`.
    fn in_class(name: &str, class: Class, rd: bool) -> Query {
        Query {
            class: class.to_int(),
            rd,
            ..Query::new(name, Rtype::A.to_int())
        }
    }

    /// The message, with ID `id`.
    pub fn wire(&self, id: u16) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            let mut raw = raw.clone();
            if raw.len() >= 2 {
                raw[..2].copy_from_slice(&id.to_be_bytes());
            }
            return raw;
        }
        let flags = Flags {
            rd: self.rd,
            cd: self.cd,
            opcode: Opcode::from_int(self.opcode),
        };
        query_wire(
            &name(&self.name),
            Rtype::from_int(self.qtype),
            Class::from_int(self.class),
            id,
            flags,
            self.edns.map(|(size, dnssec_ok)| (size, 0, dnssec_ok)),
        )
    }

    /// The `dig` options that send this query (after `dig @IP -p PORT`).
    pub fn dig_args(&self) -> String {
        if let Some(raw) = &self.raw {
            return format!("(a malformed message, not sendable by dig: {})", hex(raw));
        }
        let mut args = format!(
            "'{}' {} -c {}",
            self.name,
            Rtype::from_int(self.qtype),
            Class::from_int(self.class)
        );
        args.push_str(if self.rd { " +rec" } else { " +norec" });
        if self.cd {
            args.push_str(" +cd");
        }
        match self.edns {
            None => args.push_str(" +noedns"),
            Some((size, dnssec_ok)) => {
                args.push_str(&format!(" +bufsize={size}"));
                if dnssec_ok {
                    args.push_str(" +dnssec");
                }
            }
        }
        if self.tcp {
            args.push_str(" +tcp");
        }
        if self.opcode != 0 {
            args.push_str(&format!(" +opcode={}", self.opcode));
        }
        args.push_str(" +nocookie +noad");
        args
    }

    /// The qtype's mnemonic (or TYPEn).
    pub fn qtype_name(&self) -> String {
        Rtype::from_int(self.qtype).to_string()
    }
}

/// The owner names of a zone file written as `tests/conformance/*.zone` are: the first
/// column of every record line, relative to `$ORIGIN`, `@` the origin.
pub fn owners(zone_text: &str) -> Vec<String> {
    let mut origin = String::new();
    let mut out: Vec<String> = Vec::new();
    for line in zone_text.lines() {
        if let Some(o) = line.strip_prefix("$ORIGIN") {
            origin = o.trim().to_string();
            continue;
        }
        if line.starts_with([';', '$', ' ', '\t']) || line.trim().is_empty() {
            continue;
        }
        let owner = line.split_whitespace().next().unwrap();
        let full = match owner {
            "@" => origin.clone(),
            o if o.ends_with('.') && !o.ends_with("\\.") => o.to_string(),
            o => format!("{o}.{origin}"),
        };
        if !out.contains(&full) {
            out.push(full);
        }
    }
    out
}

/// Every name worth asking about an owner: itself, below it, beside it, and for a
/// wildcard the names it covers.
fn names_around(owner: &str) -> Vec<String> {
    let mut names = vec![owner.to_string()];
    if let Some(parent) = owner.strip_prefix("*.") {
        names.push(format!("anything.{parent}"));
        names.push(format!("two.labels.{parent}"));
    } else {
        names.push(format!("below.{owner}"));
        names.push(format!("x.www.{owner}"));
        let (first, rest) = split_first_label(owner);
        names.push(format!("{first}-beside.{rest}"));
    }
    names
}

/// `www.conf.test.` into `www` and `conf.test.` (an escaped dot stays in the label).
fn split_first_label(name: &str) -> (&str, &str) {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'.' => return (&name[..i], &name[i + 1..]),
            _ => i += 1,
        }
    }
    (name, "")
}

/// Letters in alternating case (escapes keep their digits, so they are not changed).
pub fn mixed_case(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// The variants each (name, type) is also asked in, one per pair in turn, so every variant
/// meets every kind of name without multiplying the set.
fn variant(q: &mut Query, n: usize) {
    match n % 8 {
        0 => {}
        1 => q.edns = None,
        2 => q.edns = Some((1232, true)),
        3 => q.cd = true,
        4 => q.rd = true,
        5 => q.tcp = true,
        6 => q.name = mixed_case(&q.name),
        _ => q.edns = Some((512, true)),
    }
}

/// Every name around every owner, asked for every type of [`TYPES`].
fn names_by_types(owners: &[String]) -> impl Iterator<Item = Query> + '_ {
    owners.iter().flat_map(|owner| {
        names_around(owner).into_iter().flat_map(|name| {
            TYPES.iter().map(move |ty| {
                Query::new(&name, ty.parse::<Rtype>().expect("a known type").to_int())
            })
        })
    })
}

/// The authoritative set: names x types, each once plain and once in a variant; odd
/// types, classes and opcodes at the owners; malformed messages.
pub fn authoritative(owners: &[String]) -> Vec<Query> {
    let mut out = Vec::new();
    for (n, q) in names_by_types(owners).enumerate() {
        out.push(q.clone());
        if (n + 1) % 8 != 0 {
            let mut q = q;
            variant(&mut q, n + 1);
            out.push(q);
        }
    }
    for owner in owners {
        // `t-<type>` owns one record of that type (read by names' own presentation parser).
        let own_type = owner
            .strip_prefix("t-")
            .and_then(|rest| rest.split('.').next());
        if let Some(ty) = own_type.and_then(|ty| ty.to_ascii_uppercase().parse::<Rtype>().ok()) {
            out.push(Query::new(owner, ty.to_int()));
            let mut q = Query::new(owner, ty.to_int());
            q.tcp = true;
            out.push(q);
        }
        for &qtype in ODD_TYPES {
            out.push(Query::new(owner, qtype));
        }
        for class in [Class::CH, Class::HS, Class::NONE, Class::ANY] {
            out.push(Query::in_class(owner, class, false));
        }
        for opcode in [1, 2, 4, 5, 6] {
            let mut q = Query::new(owner, Rtype::SOA.to_int());
            q.opcode = opcode;
            out.push(q);
        }
        // Transfers over UDP (over TCP the two servers split a transfer differently).
        for edns in [None, Some((4096, true))] {
            for ty in ["AXFR", "IXFR"] {
                let mut q = Query::new(owner, ty.parse::<Rtype>().unwrap().to_int());
                q.edns = edns;
                out.push(q);
            }
        }
    }
    out.extend(malformed());
    out
}

/// The forwarding set: names x types with RD, in the variants a stub sends; classes no
/// upstream serves (NSD answers HS without a question).
pub fn forwarding(owners: &[String]) -> Vec<Query> {
    let mut out = Vec::new();
    for (n, mut q) in names_by_types(owners).enumerate() {
        q.rd = true;
        match (n + 1) % 6 {
            0 => q.edns = None,
            1 => q.edns = Some((1232, true)),
            2 => q.tcp = true,
            3 => q.name = mixed_case(&q.name),
            4 => q.cd = true,
            _ => {}
        }
        out.push(q);
    }
    for owner in owners {
        for class in [Class::CH, Class::HS] {
            out.push(Query::in_class(owner, class, true));
        }
    }
    out
}

/// Messages no server may answer with data: cut short, counts that lie, pointers that
/// loop, a response, two questions.
fn malformed() -> Vec<Query> {
    let good = Query::new("www.conf.test.", Rtype::A.to_int()).wire(0);
    let header =
        |flags: u16, qd: u16, an: u16, ns: u16, ar: u16| raw_header(0, flags, qd, an, ns, ar);
    let mut cases: Vec<Vec<u8>> = vec![
        good[..11].to_vec(),                 // shorter than a header
        header(0, 0, 0, 0, 0),               // no question
        header(0, 1, 0, 0, 0),               // a question that is not there
        good[..good.len() - 3].to_vec(),     // question cut short
        query_two_questions(0),              // two questions
        [good.clone(), vec![0; 7]].concat(), // trailing bytes
        header(0x8000, 0, 0, 0, 0),          // a response (QR set)
    ];
    // A question whose name is a pointer to itself.
    let mut looped = header(0, 1, 0, 0, 0);
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    cases.push(looped);
    // An ARCOUNT of 1 with no record, and an OPT of EDNS version 1.
    let mut lying = good.clone();
    lying[11] = 2;
    cases.push(lying);
    let edns1 = query_full(
        "www.conf.test.",
        Rtype::A,
        0,
        false,
        Some(1232),
        1,
        Opcode::QUERY,
    );
    cases.push(edns1);
    cases
        .into_iter()
        .map(|raw| Query {
            raw: Some(raw),
            ..Query::new("malformed.", 0)
        })
        .collect()
}
