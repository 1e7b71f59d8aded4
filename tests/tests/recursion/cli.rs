//! The recursion flags' errors: one line, exit code 2, nothing served.

use names_tests::run_names;

/// `names serve ARGS` ends at once with exit code 2 and one stderr line containing `want`.
fn refused(args: &[&str], want: &str) {
    let mut full = vec!["serve", "--listen", "127.0.0.1:0"];
    full.extend_from_slice(args);
    let out = run_names(&full);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: one line: {stderr}"
    );
    assert!(stderr.contains(want), "{args:?}: {stderr}");
}

#[test]
fn contradicting_and_orphan_flags_are_one_line_errors() {
    let dir = names_tests::temp_dir("recursion-cli");
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 192.0.2.53\n").unwrap();
    let resolv = resolv.display().to_string();
    let conflict = "and --recursive exclude each other";
    refused(
        &["--recursive", "--upstream", "192.0.2.53"],
        &format!("--upstream {conflict}"),
    );
    refused(
        &["--recursive", "--resolv-conf", &resolv],
        &format!("--resolv-conf {conflict}"),
    );
    refused(
        &["--recursive", "--no-forward"],
        &format!("--no-forward {conflict}"),
    );
    refused(&["--root-hints", &resolv], "--root-hints needs --recursive");
    refused(
        &["--query-localhost"],
        "--query-localhost needs --recursive",
    );
    let missing = dir.join("missing.hints").display().to_string();
    refused(&["--recursive", "--root-hints", &missing], "missing.hints");
    for bad in [
        "corp.test",
        "corp.test=",
        "=192.0.2.1",
        "corp.test=host.example",
        "a..b=192.0.2.1",
    ] {
        refused(&["--no-forward", "--forward", bad], "--forward");
    }
    // From a config file: the file and the key are named.
    let config = dir.join("names.toml");
    std::fs::write(&config, "recursive = true\nupstream = [\"192.0.2.53\"]\n").unwrap();
    refused(
        &["--config", &config.display().to_string()],
        "key \"upstream\"",
    );
}

#[test]
fn a_bad_hints_file_names_its_line() {
    let dir = names_tests::temp_dir("recursion-hints");
    let hints = dir.join("bad.hints");
    let good = ".\t3600000\tNS\ta.root.\na.root.\t3600000\tA\t127.53.0.1\n";
    std::fs::write(
        &hints,
        format!(";; root\n{good}a.root. 3600000 A not-an-address\n"),
    )
    .unwrap();
    let path = hints.display().to_string();
    refused(
        &["--recursive", "--root-hints", &path],
        &format!("{path}:4: "),
    );
    std::fs::write(&hints, ";; nothing here\n").unwrap();
    refused(
        &["--recursive", "--root-hints", &path],
        &format!("{path}: "),
    );
}
