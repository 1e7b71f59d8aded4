//! Replays the committed fuzz seed corpora (`fuzz/seeds/<target>/*`) through the target
//! bodies in `names_tests::fuzz`, so a plain `cargo test` on stable checks every seed,
//! including the inputs of crashes once found (named `crash-*`).

use std::path::{Path, PathBuf};

fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = seeds(target);
    assert!(files.len() >= 10, "{target}: only {} seeds", files.len());
    for path in files {
        let data = std::fs::read(&path).expect("a readable seed");
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{target}: seed {} fails", path.display());
    }
}

#[test]
fn client_datagram_seeds() {
    replay("client_datagram", names_tests::fuzz::client_datagram);
}

#[test]
fn tcp_stream_seeds() {
    replay("tcp_stream", names_tests::fuzz::tcp_stream);
}

#[test]
fn upstream_reply_seeds() {
    replay("upstream_reply", names_tests::fuzz::upstream_reply);
}

#[test]
fn zonefile_seeds() {
    replay("zonefile", names_tests::fuzz::zonefile);
}

#[test]
fn structured_seeds() {
    replay("structured", names_tests::fuzz::structured);
}

#[test]
fn structured_seeds_decode_into_scenarios() {
    use arbitrary::{Arbitrary, Unstructured};
    use names_tests::fuzz::Scenario;
    let mut queries = 0;
    for path in seeds("structured") {
        let data = std::fs::read(&path).expect("a readable seed");
        let s = Scenario::arbitrary_take_rest(Unstructured::new(&data))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        queries += s.queries.len();
    }
    assert!(queries >= 24, "the seeds carry {queries} queries");
}

#[test]
fn zonefile_seeds_include_loadable_zones() {
    let mut loaded = 0;
    for path in seeds("zonefile") {
        let text =
            String::from_utf8_lossy(&std::fs::read(&path).expect("a readable seed")).into_owned();
        let mut include = |_: &str, _: &str| Ok(("inc.zone".to_string(), String::new()));
        if names_core::zone::load_zone("seed", &text, &mut include).is_ok() {
            loaded += 1;
        }
    }
    assert!(loaded >= 6, "only {loaded} zone seeds load");
}

/// A panic inside domain 0.12.3's zone scanner, found by fuzzing: the loader now turns it
/// into an error naming the file (its input also sits in the zonefile seeds).
#[test]
fn zone_scanner_panic_is_an_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/zonefile");
    let data = std::fs::read(dir.join("crash-domain-charstr-oob")).expect("the crash input");
    let text = String::from_utf8_lossy(&data);
    let mut no_includes =
        |_: &str, _: &str| -> Result<(String, String), String> { Err("no includes".into()) };
    let err = names_core::zone::load_zone("crash.zone", &text, &mut no_includes).unwrap_err();
    assert!(err.to_string().contains("crash.zone"), "{err}");
}

/// The oracle the bodies check replies against is not vacuous on the seeds: they reach
/// every outcome it knows.
#[test]
fn client_datagram_seeds_reach_every_outcome() {
    use names_core::domain::base::iana::OptRcode;
    use names_tests::fuzz::oracle::{expect, Expect};
    let mut seen = std::collections::BTreeSet::new();
    for path in seeds("client_datagram") {
        let data = std::fs::read(&path).expect("a readable seed");
        seen.insert(match expect(&data) {
            Expect::Drop => "drop".to_string(),
            Expect::Reject(rcode) => rcode.to_string(),
            Expect::Query { .. } => "query".to_string(),
        });
    }
    eprintln!("{seen:?}");
    for outcome in [OptRcode::FORMERR, OptRcode::NOTIMP, OptRcode::BADVERS] {
        assert!(seen.contains(&outcome.to_string()), "{outcome}: {seen:?}");
    }
    assert!(seen.contains("drop") && seen.contains("query"), "{seen:?}");
}
