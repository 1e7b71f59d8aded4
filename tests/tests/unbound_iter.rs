//! Unbound's iterator scenarios (NLnetLabs/unbound `testdata/iter_*.rpl`, copied under
//! `tests/unbound/` with their origin) replayed through the real binary with
//! `names serve --recursive --query-localhost`: their servers are fake authoritative
//! servers on loopback port 53, their root stub a `--root-hints` file
//! ([`names_tests::rpl`] says how, and where the replay differs from testbound).
//! Each scenario is one test; a failure names the scenario, the step and the difference.
//! The scenarios `names` does not pass are ignored tests, each with what differs.
//!
//! Not committed, and why (49 of Unbound's 117 `iter_*.rpl`):
//! * DNSSEC validation (a trust anchor or the validator module): `iter_cname_minimise_nx`,
//!   `iter_dname_ttl`, `iter_dname_ttl0`, `iter_dname_ttl0_grace`, `iter_dnsseclame_*`
//!   (5), `iter_ds_referral`, `iter_ds_reply`, `iter_emptydp`, `iter_emptydp_for_glue`,
//!   `iter_primenoglue`, `iter_scrub_dname_rev`, `iter_scrub_dname_sec`.
//! * Stub zones below the root (`names` has `--forward`, no stubs): `iter_fwdstub`,
//!   `iter_fwdstubroot`, `iter_scrub_ns`, `iter_scrub_ns_side`, `iter_stub_leak`,
//!   `iter_stub_noroot`, `iter_stublastresort`; `forward-first`/`stub-first` (falling back
//!   to recursion): `iter_fwdfirst`, `iter_fwdfirstequal`, `iter_fwdfirstequaltcp`,
//!   `iter_stubfirst`.
//! * Options `names` does not have: NAT64 (`iter_nat64`, `iter_nat64_donotq`,
//!   `iter_nat64_prefix`, `iter_nat64_prefix48`), `private-address` (`iter_privaddr`,
//!   `iter_priv_svcb`), `max-global-quota` (`iter_minimise_chain`, `iter_max_global_quota`),
//!   an `auth-zone` or files the scenario writes (`iter_fwdstubauth`,
//!   `iter_class_any_merge`), built-in root hints (`iter_nxns_cached`).
//! * Outgoing queries answered step by step (`STEP REPLY`, `TIMEOUT`, `INFRA_RTT`), which
//!   needs testbound's control of the resolver's clock: `iter_lame_noaa`,
//!   `iter_lame_nosoa`, `iter_resolve_minimised_timeout`, `iter_scrub_cname_an`,
//!   `iter_scrub_dname_insec`, `iter_scrub_dname_out_of_zone`, `iter_timeout_ra_aaaa`.
//! * Data the replay does not build: class CH and ANY (`iter_class_any`,
//!   `iter_class_mixreferral`), raw hex answers (`iter_svcb_malformed`), a stray
//!   `RANGE_END` (`iter_failreply`).
//!
//! Where the replay departs from testbound (real time, sections compared as sets, TTL
//! slack, the OPT record not compared, steps after a long `TIME_PASSES` not played) is
//! said in [`names_tests::rpl::play`]; the steps not played are printed by each test.
//!
//! `RPL_DIR=DIR cargo test -p names-tests --test unbound_iter every_scenario_in_dir --
//! --ignored --nocapture` replays every `.rpl` of DIR and prints one line each (for
//! choosing what to commit).

use std::path::{Path, PathBuf};

use names_tests::rpl::{self, play};

/// Scenario files, committed; a test's loopback slot is its index here.
const COMMITTED: &[&str] = &[
    "iter_auth_tc",
    "iter_cname_cache",
    "iter_cname_double",
    "iter_cname_minimise",
    "iter_cname_nx",
    "iter_cname_qnamecopy",
    "iter_cycle",
    "iter_cycle_noh",
    "iter_dname_insec",
    "iter_dname_yx",
    "iter_domain_sale",
    "iter_domain_sale_nschange",
    "iter_donotq127",
    "iter_dp_ip6useless",
    "iter_dp_turnsuseless",
    "iter_ds_locate_ns",
    "iter_ds_locate_ns_cname",
    "iter_ds_locate_ns_detach",
    "iter_ds_locate_ns_nosoa",
    "iter_ghost_grandchild_delegation",
    "iter_ghost_ns_childapex",
    "iter_ghost_sub",
    "iter_ghost_timewindow",
    "iter_got6only",
    "iter_hint_lame",
    "iter_ignore_empty",
    "iter_lame_aaaa",
    "iter_lamescrub",
    "iter_mod",
    "iter_ns_badip",
    "iter_ns_spoof",
    "iter_nxns_fallback",
    "iter_nxns_parentside",
    "iter_pc_a",
    "iter_pc_aaaa",
    "iter_pcdiff",
    "iter_pcdirect",
    "iter_pclame",
    "iter_pcname",
    "iter_pcnamech",
    "iter_pcnamechrec",
    "iter_pcnamerec",
    "iter_pcttl",
    "iter_prefetch",
    "iter_prefetch_change",
    "iter_prefetch_change2",
    "iter_prefetch_childns",
    "iter_prefetch_fail",
    "iter_prefetch_ns",
    "iter_ranoaa_lame",
    "iter_reclame_one",
    "iter_reclame_two",
    "iter_recurse",
    "iter_req_qname",
    "iter_resolve",
    "iter_resolve_minimised",
    "iter_resolve_minimised_nx",
    "iter_resolve_minimised_refused",
    "iter_scrub_mx",
    "iter_scrub_ns_fwd",
    "iter_scrub_ns_min",
    "iter_scrub_promiscuous",
    "iter_scrub_rr_length",
    "iter_self_glue",
    "iter_self_glue_promisc",
    "iter_soamin",
    "iter_unverified_glue",
    "iter_unverified_glue_fallback",
];

fn dir() -> PathBuf {
    names_tests::workspace_root().join("tests/unbound")
}

/// Replays one scenario file; the error is the whole report.
fn replay_file(path: &Path, slot: u16, flags: &[&str]) -> Result<play::Played, String> {
    let file = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let scenario = rpl::parse(&file, &text)?;
    play::play(&file, &scenario, slot, flags)
}

/// One replay at a time: a replay runs on real time (the recursor's timeouts), and on a
/// loaded machine two at once make slow answers look like dead servers.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn replay(name: &str) {
    let slot = COMMITTED
        .iter()
        .position(|n| *n == name)
        .expect("a committed scenario");
    let path = dir().join(format!("{name}.rpl"));
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // A difference must show twice: real time on a shared machine can delay a reply past
    // a timeout once (the first report is printed all the same).
    let played = replay_file(&path, slot as u16, &[]).or_else(|first| {
        eprintln!("{name}: first attempt failed, replaying once more:\n{first}");
        replay_file(&path, slot as u16, &[])
    });
    match played {
        Ok(played) => {
            assert!(
                played.checked > 0,
                "{name}: no answer was checked ({:?})",
                played.skipped
            );
            for skipped in played.skipped {
                eprintln!("{name}: {skipped}");
            }
        }
        Err(report) => panic!("{report}"),
    }
}

#[test]
#[ignore = "a tool: replays every scenario of $RPL_DIR"]
fn every_scenario_in_dir() {
    let Some(dir) = std::env::var_os("RPL_DIR") else {
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("RPL_DIR")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rpl"))
        .collect();
    files.sort();
    for (slot, path) in files.iter().enumerate() {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let started = std::time::Instant::now();
        let flags = std::env::var("RPL_FLAGS").unwrap_or_default();
        let flags: Vec<&str> = flags.split_whitespace().collect();
        let outcome = match replay_file(path, (slot % 400) as u16, &flags) {
            Ok(p) if p.checked == 0 => format!("NOCHECK {:?}", p.skipped),
            Ok(p) => format!("PASS {} checked; skipped {:?}", p.checked, p.skipped),
            Err(e) => format!("FAIL {}", e.replace('\n', "\n    ")),
        };
        println!(
            "== {name} ({:.1}s) {outcome}",
            started.elapsed().as_secs_f64()
        );
    }
}

/// One test per scenario that `names` passes.
macro_rules! passing {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*
    };
}

/// One ignored test per scenario `names` fails, with what differs (`--ignored` runs them).
macro_rules! failing {
    ($($name:ident: $why:literal),* $(,)?) => {
        $(
            #[test]
            #[ignore = $why]
            fn $name() {
                replay(stringify!($name));
            }
        )*
    };
}

passing! {
    iter_auth_tc,
    iter_cname_cache,
    iter_cname_double,
    iter_cname_minimise,
    iter_cname_nx,
    iter_cname_qnamecopy,
    iter_cycle,
    iter_dname_insec,
    iter_dname_yx,
    iter_domain_sale,
    iter_domain_sale_nschange,
    iter_donotq127,
    iter_dp_ip6useless,
    iter_dp_turnsuseless,
    iter_ds_locate_ns,
    iter_ds_locate_ns_cname,
    iter_ds_locate_ns_detach,
    iter_ds_locate_ns_nosoa,
    iter_ghost_grandchild_delegation,
    iter_ghost_sub,
    iter_ghost_timewindow,
    iter_got6only,
    iter_hint_lame,
    iter_ignore_empty,
    iter_lame_aaaa,
    iter_lamescrub,
    iter_mod,
    iter_ns_badip,
    iter_ns_spoof,
    iter_nxns_fallback,
    iter_nxns_parentside,
    iter_pc_a,
    iter_pc_aaaa,
    iter_pclame,
    iter_pcdiff,
    iter_pcdirect,
    iter_pcnamech,
    iter_pcnamechrec,
    iter_pcnamerec,
    iter_pcname,
    iter_pcttl,
    iter_prefetch,
    iter_prefetch_change,
    iter_prefetch_change2,
    iter_prefetch_childns,
    iter_prefetch_fail,
    iter_prefetch_ns,
    iter_ranoaa_lame,
    iter_reclame_one,
    iter_reclame_two,
    iter_recurse,
    iter_req_qname,
    iter_resolve,
    iter_resolve_minimised,
    iter_resolve_minimised_nx,
    iter_resolve_minimised_refused,
    iter_scrub_mx,
    iter_scrub_ns_fwd,
    iter_scrub_promiscuous,
    iter_self_glue,
    iter_self_glue_promisc,
    iter_soamin,
    iter_unverified_glue_fallback,
}

failing! {
    iter_cycle_noh: "harden-glue: no (out-of-bailiwick glue trusted, which breaks the NS cycle); names never uses out-of-bailiwick glue, by design: SERVFAIL",
    iter_ghost_ns_childapex: "the additional section lacks the glue of the NS the answer names (minimal-responses: yes, and Unbound still gives it; giving the NS names' addresses to an NS question breaks the conformance test against Unbound 1.17.1, which gives only some)",
    iter_scrub_ns_min: "iter-scrub-ns (an Unbound option limiting the NS records kept per reply) is not in names",
    iter_scrub_rr_length: "records of impossible length are dropped alone (steps 10-90 pass); step 110 (CD DO, a new cache key) is resolved again where Unbound answers from its message cache with the NS addresses a later reply replaced (1.2.3.6, 1.2.3.7)",
    iter_unverified_glue: "harden-unverified-glue: the glue is used without looking up the NS name's own address (which differs)",
}

// The replay itself: a wrong expectation fails, naming the step and the difference.
#[test]
fn a_wrong_expected_answer_fails_with_its_step_and_difference() {
    let text = std::fs::read_to_string(dir().join("iter_resolve.rpl")).expect("iter_resolve.rpl");
    let at = text.rfind("10.20.30.40").expect("the expected answer");
    let wrong = format!(
        "{}10.20.30.41{}",
        &text[..at],
        &text[at + "10.20.30.40".len()..]
    );
    let scenario = rpl::parse("wrong.rpl", &wrong).expect("still a scenario");
    let slot = COMMITTED.len() as u16;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let report = play::play("wrong.rpl", &scenario, slot, &[]).expect_err("a wrong answer fails");
    assert!(report.starts_with("wrong.rpl STEP 10 (line "), "{report}");
    assert!(
        report.contains("answer: missing  www.example.com in a 10.20.30.41"),
        "{report}"
    );
    assert!(
        report.contains("answer: unexpected www.example.com in a 10.20.30.40"),
        "{report}"
    );
}

#[test]
fn a_parse_error_is_one_line_with_its_line_number() {
    let text = "server:\nCONFIG_END\nSCENARIO_BEGIN x\nSTEP 1 QUERY\nENTRY_BEGIN\nREPLY RD BOGUS\n";
    let err = rpl::parse("bad.rpl", text).expect_err("BOGUS is no REPLY word");
    assert_eq!(err, "bad.rpl:6: unknown REPLY word \"BOGUS\"");
    let err = rpl::parse("bad.rpl", "server:\n").expect_err("no CONFIG_END");
    assert!(
        err.starts_with("bad.rpl:1: ") && !err.contains('\n'),
        "{err}"
    );
}
