//! Record and replay through the real binary: `names serve --record FILE` driven by dig
//! against a fake upstream (answers, an upstream that never answers, a truncated reply
//! retried over TCP; UDP and TCP clients), then `names replay FILE [--check]`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use names_tests::{
    answer_a, dig_at, parse, run_names, temp_dir, with_tc, FakeUpstream, Reply, Server,
};

/// The fake upstream: `slow.` never answers, `big.` is truncated over UDP and answered
/// over TCP, the rest gets 192.0.2.1.
fn upstream() -> FakeUpstream {
    FakeUpstream::start(|r| {
        let name = parse(&r.bytes)
            .question
            .map(|q| q.0.to_lowercase())
            .unwrap_or_default();
        if name.starts_with("slow.") {
            vec![Reply::Nothing]
        } else if name.starts_with("big.") && !r.tcp {
            vec![Reply::Send(with_tc(&answer_a(&r.bytes, &[], 60)))]
        } else {
            vec![Reply::Send(answer_a(
                &r.bytes,
                &["192.0.2.1".parse().unwrap()],
                60,
            ))]
        }
    })
}

fn serve(fake: &FakeUpstream, extra: &[&str]) -> Server {
    let upstream = fake.arg();
    let mut args = vec![
        "--upstream",
        &upstream,
        "--timeout",
        "700",
        "--try-timeout",
        "300",
        "--synth",
        "ws=10.0.0",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn stop(mut server: Server) -> String {
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{}", server.logs());
    server.logs()
}

/// The dig session every recording test drives.
fn session(server: &Server) {
    let at = server.udp_addr();
    let a = dig_at(at, &["a.example.", "A"]);
    assert!(a.contains("192.0.2.1"), "{a}");
    let tcp = dig_at(at, &["+tcp", "a.example.", "A"]);
    assert!(tcp.contains("192.0.2.1"), "{tcp}");
    let big = dig_at(at, &["big.example.", "A"]);
    assert!(big.contains("status: NOERROR"), "{big}");
    let slow = dig_at(at, &["slow.example.", "A"]);
    assert!(slow.contains("status: SERVFAIL"), "{slow}");
    let ws = dig_at(at, &["+tcp", "ws7.example.", "A"]);
    assert!(ws.contains("10.0.0.7"), "{ws}");
}

fn replay(args: &[&str], file: &Path) -> Output {
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    all.push(file.to_str().unwrap());
    run_names(&all)
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn recorded(tag: &str, workers: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(tag);
    let file = dir.join("session.jnl");
    let fake = upstream();
    let server = serve(
        &fake,
        &["--workers", workers, "--record", file.to_str().unwrap()],
    );
    session(&server);
    stop(server);
    assert!(fake.tcp_count() >= 1, "the TC reply was retried over TCP");
    (dir, file)
}

#[test]
fn a_recorded_session_replays_identically() {
    let (_dir, file) = recorded("replay-check", "1");
    let check = replay(&["--check"], &file);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    assert!(
        text(&check.stdout).contains("identical"),
        "{}",
        text(&check.stdout)
    );

    // Printed: the replies decoded, the upstream queries (UDP and the TCP retry), closes.
    let out = replay(&[], &file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    for want in [
        "udp (listener 0): ;; status: NOERROR",
        "a.example. 60 IN A 192.0.2.1",
        "tcp: ;; status: NOERROR",
        "ws7.example. 60 IN A 10.0.0.7",
        "upstream query token=",
        "big.example A",
        " tcp: big.example A",
        "status: SERVFAIL",
        "close upstream token=",
        "close conn",
    ] {
        assert!(printed.contains(want), "{want:?} missing from:\n{printed}");
    }
    // Every line is one action with its time and worker.
    assert!(
        printed
            .lines()
            .all(|l| l.starts_with('+') && l.contains("s w0 ")),
        "{printed}"
    );
    // The same printout each time: the replay is deterministic.
    assert_eq!(text(&replay(&[], &file).stdout), printed);
}

#[test]
fn two_workers_replay_identically() {
    let (_dir, file) = recorded("replay-workers", "2");
    let check = replay(&["--check"], &file);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
}

/// Three workers sharing one cache, asked the same few names by parallel clients: the
/// journal's order is the order the workers touched the cache, so the replay is exact.
#[test]
fn parallel_clients_on_three_workers_replay_identically() {
    let dir = temp_dir("replay-parallel");
    let file = dir.join("parallel.jnl");
    let names: String = (0..200)
        .map(|i| format!("c{}.example. A\n", i % 100))
        .collect();
    let batch = dir.join("names.txt");
    std::fs::write(&batch, names).unwrap();
    let fake = upstream();
    let server = serve(
        &fake,
        &["--workers", "3", "--record", file.to_str().unwrap()],
    );
    let at = server.udp_addr();
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let batch = batch.clone();
            std::thread::spawn(move || dig_at(at, &["+short", "-f", batch.to_str().unwrap()]))
        })
        .collect();
    for c in clients {
        let out = c.join().unwrap();
        // (A datagram may be lost on a busy loopback: the journal is what is checked.)
        assert!(out.matches("192.0.2.1").count() >= 190, "{out}");
    }
    stop(server);
    let check = replay(&["--check"], &file);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    assert!(text(&check.stdout).contains("identical"));
}

/// One line on stderr, `names: error: ...`, exit 2.
fn assert_one_error_line(out: &Output, what: &str) {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: {err}{}",
        text(&out.stdout)
    );
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(err.starts_with("names: error: "), "{what}: {err}");
}

#[test]
fn damaged_or_cut_journals_are_one_error_line() {
    let (dir, file) = recorded("replay-damage", "1");
    let whole = std::fs::read(&file).unwrap();
    // A byte flipped anywhere (a few places): caught by the checksum or the framing.
    for at in [3, 12, 40, whole.len() / 3, whole.len() / 2, whole.len() - 5] {
        let mut bytes = whole.clone();
        bytes[at] ^= 0x20;
        let bad = dir.join(format!("flipped-{at}.jnl"));
        std::fs::write(&bad, &bytes).unwrap();
        let out = replay(&["--check"], &bad);
        assert_one_error_line(&out, &format!("byte {at} flipped"));
    }
    let mid = whole.len() / 2;
    let mut flipped = whole.clone();
    flipped[mid] ^= 1;
    let bad = dir.join("flipped.jnl");
    std::fs::write(&bad, &flipped).unwrap();
    let out = replay(&[], &bad);
    assert_one_error_line(&out, "flipped");
    assert!(text(&out.stderr).contains("damaged") || text(&out.stderr).contains("cut short"));
    // Cut inside the last entry.
    let cut = dir.join("cut.jnl");
    std::fs::write(&cut, &whole[..whole.len() - 3]).unwrap();
    let out = replay(&["--check"], &cut);
    assert_one_error_line(&out, "cut");
    assert!(
        text(&out.stderr).contains("cut short"),
        "{}",
        text(&out.stderr)
    );
    // Not a journal at all, an empty file, a missing file.
    let other = dir.join("other.jnl");
    std::fs::write(&other, b"hello, this is not a journal").unwrap();
    assert_one_error_line(&replay(&[], &other), "not a journal");
    std::fs::write(&other, b"").unwrap();
    assert_one_error_line(&replay(&[], &other), "empty");
    assert_one_error_line(&replay(&[], &dir.join("missing.jnl")), "missing");
    // CLI misuse.
    assert_eq!(run_names(&["replay"]).status.code(), Some(2));
}

#[test]
fn the_size_cap_stops_recording_with_one_log_line() {
    let dir = temp_dir("replay-cap");
    let file = dir.join("capped.jnl");
    let fake = upstream();
    let server = serve(
        &fake,
        &[
            "--workers",
            "1",
            "--record",
            file.to_str().unwrap(),
            "--record-max-bytes",
            "3000",
        ],
    );
    for i in 0..30 {
        let name = format!("n{i}.example.");
        let out = dig_at(server.udp_addr(), &[&name, "A"]);
        assert!(
            out.contains("192.0.2.1"),
            "serving goes on at the cap: {out}"
        );
    }
    let logs = stop(server);
    assert_eq!(
        logs.matches("reached --record-max-bytes").count(),
        1,
        "{logs}"
    );
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size <= 3000 + 64, "{size} bytes");
    // What was recorded replays, and says it stopped early.
    let check = replay(&["--check"], &file);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    assert!(
        text(&check.stdout).contains("stopped early"),
        "{}",
        text(&check.stdout)
    );
}

#[test]
fn without_record_no_file_is_written() {
    let dir = temp_dir("replay-off");
    let fake = upstream();
    let mut cmd = Command::new(names_tests::names_bin());
    cmd.current_dir(&dir).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &fake.arg(),
    ]);
    let server = Server::try_start_command(cmd).unwrap();
    let out = dig_at(server.udp_addr(), &["a.example.", "A"]);
    assert!(out.contains("192.0.2.1"), "{out}");
    let logs = stop(server);
    assert!(!logs.contains("record"), "{logs}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// A journal whose recorded actions differ from what the core does (one reply byte
/// changed, re-encoded with a valid checksum): `--check` names the first difference and
/// exits 1.
#[test]
fn check_reports_the_first_difference() {
    use names_core::journal::{self, Reader, Record};
    let (dir, file) = recorded("replay-diff", "1");
    let bytes = std::fs::read(&file).unwrap();
    let mut reader = Reader::new(&bytes[..]).unwrap();
    let mut out = Vec::new();
    journal::write_start(&mut out, reader.header());
    let mut changed = false;
    while let Some(entry) = reader.next_entry().unwrap() {
        match entry.record {
            Record::Input(input) => journal::encode_input(&mut out, entry.worker, entry.at, &input),
            Record::Action(mut action) => {
                if let names_core::Action::Reply { bytes, .. } = &mut action {
                    if !changed {
                        *bytes.last_mut().unwrap() ^= 1;
                        changed = true;
                    }
                }
                journal::encode_action(&mut out, entry.worker, entry.at, &action);
            }
            Record::Stopped(reason) => journal::encode_stopped(&mut out, entry.at, reason),
        }
    }
    assert!(changed);
    let edited = dir.join("edited.jnl");
    std::fs::write(&edited, &out).unwrap();
    let check = replay(&["--check"], &edited);
    assert_eq!(
        check.status.code(),
        Some(1),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    let said = text(&check.stdout);
    assert!(said.contains("first difference at entry"), "{said}");
    assert!(
        said.contains("recorded reply to") && said.contains("replayed reply to"),
        "{said}"
    );
}

/// A journal that cannot be created stops `names serve` before it binds, in one line.
#[test]
fn an_unwritable_journal_is_one_error_line() {
    let dir = temp_dir("replay-unwritable");
    let file = dir.join("no-such-dir").join("x.jnl");
    let out = run_names(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--no-forward",
        "--record",
        file.to_str().unwrap(),
    ]);
    // (Warnings about this machine's limits may come first.)
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("names: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("cannot record: --record "), "{err}");
}

/// `record` and `record_max_bytes` are config file keys too; the cap without a journal
/// is a mistake, said in one line.
#[test]
fn recording_from_the_config_file() {
    let dir = temp_dir("replay-config");
    let file = dir.join("from-config.jnl");
    let config = dir.join("names.toml");
    std::fs::write(
        &config,
        format!(
            "record = {:?}\nrecord_max_bytes = 100000\nworkers = 1\n",
            file.to_str().unwrap()
        ),
    )
    .unwrap();
    let fake = upstream();
    let server = serve(&fake, &["--config", config.to_str().unwrap()]);
    let out = dig_at(server.udp_addr(), &["a.example.", "A"]);
    assert!(out.contains("192.0.2.1"), "{out}");
    stop(server);
    let check = replay(&["--check"], &file);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    let out = run_names(&["serve", "--no-forward", "--record-max-bytes", "10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--record-max-bytes needs --record"));
}
