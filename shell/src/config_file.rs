//! `--config FILE`: a TOML file that says what the `serve` flags say.
//!
//! Its keys are the long flag names with `-` written `_` (`listen`, `no_forward`,
//! `cache_size`, ...). A repeatable flag takes an array (a single value is also
//! accepted), a switch takes a boolean, every other flag a string or an integer:
//!
//! ```toml
//! listen = ["127.0.0.1:10053"]
//! upstream = ["192.0.2.53"]
//! synth = ["workstation=172.0.2"]
//! timeout = 3000
//! log_queries = true
//! ```
//!
//! The file is turned into flags and checked with the same parser as the command line,
//! so one reference serves both and new flags are accepted in the file as soon as they
//! exist. A flag given on the command line replaces the file's value for that key.
//! Unknown keys and bad values give one error line naming the key and the file.

use argh::FromArgs;
use toml::Value;

/// The flags a config file stands for, key by key, in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileArgs {
    /// The file they came from, for error messages.
    pub path: String,
    /// Per key (as written in the file): the command-line arguments it stands for.
    pub keys: Vec<(String, Vec<String>)>,
}

impl FileArgs {
    /// The file's arguments for the keys `cli` does not set, followed by `cli`: a flag on
    /// the command line replaces the file's value for that key.
    pub fn merge(&self, cli: &[String]) -> Vec<String> {
        let given: Vec<String> = cli.iter().filter_map(|a| flag_key(a)).collect();
        let mut out: Vec<String> = self
            .keys
            .iter()
            .filter(|(k, _)| !given.contains(k))
            .flat_map(|(_, a)| a.iter().cloned())
            .collect();
        out.extend(cli.iter().cloned());
        out
    }
}

/// The config key a command-line argument sets (`--no-forward` -> `no_forward`).
fn flag_key(arg: &str) -> Option<String> {
    let name = arg.strip_prefix("--").filter(|n| !n.is_empty())?;
    Some(name.replace('-', "_"))
}

/// Reads and checks `path` for the subcommand `T` (named `command`, e.g. `["names", "serve"]`).
pub fn load<T: FromArgs>(path: &str, command: &[&str]) -> Result<FileArgs, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {path}: {e}"))?;
    parse::<T>(path, &text, command)
}

/// Checks the TOML `text` of the file `path` for the subcommand `T`.
pub fn parse<T: FromArgs>(path: &str, text: &str, command: &[&str]) -> Result<FileArgs, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let message = e.message().trim().to_string();
        match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].lines().count().max(1);
                format!("config file {path}, line {line}: {message}")
            }
            None => format!("config file {path}: {message}"),
        }
    })?;
    let known = known_flags::<T>(command);
    let mut keys = Vec::new();
    for (key, value) in &table {
        let fail = |what: String| format!("config file {path}: key {key:?}: {what}");
        let flag = format!("--{}", key.replace('_', "-"));
        if key == "config" {
            return Err(fail("a config file cannot name another config file".into()));
        }
        if key.contains('-') || !known.contains(&flag) {
            return Err(format!(
                "config file {path}: unknown key {key:?} (keys are the long flag names of `{}` with '_' for '-')",
                command.join(" ")
            ));
        }
        let args = to_args(&flag, value).map_err(fail)?;
        // The value alone must parse as that flag. `false` stands for nothing, so check
        // instead that the key is a switch.
        let probe = if matches!(value, Value::Boolean(false)) {
            vec![flag.clone()]
        } else {
            args.clone()
        };
        let probe: Vec<&str> = probe.iter().map(String::as_str).collect();
        if let Err(exit) = T::from_args(command, &probe) {
            let reason = exit.output.trim().replace('\n', " ");
            return Err(fail(format!("bad value: {reason}")));
        }
        keys.push((key.clone(), args));
    }
    Ok(FileArgs {
        path: path.to_string(),
        keys,
    })
}

/// The `--long` flags `T` accepts, read from its help text.
fn known_flags<T: FromArgs>(command: &[&str]) -> Vec<String> {
    let help = match T::from_args(command, &["--help"]) {
        Err(exit) => exit.output,
        Ok(_) => String::new(),
    };
    help.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("--") && *w != "--help")
        .map(|w| w.trim_end_matches(',').to_string())
        .collect()
}

/// The arguments one key stands for.
fn to_args(flag: &str, value: &Value) -> Result<Vec<String>, String> {
    let scalar = |v: &Value| -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Integer(i) => Ok(i.to_string()),
            Value::Float(f) => Ok(f.to_string()),
            other => Err(format!(
                "bad value: expected a string or a number, found {}",
                other.type_str()
            )),
        }
    };
    match value {
        Value::Boolean(true) => Ok(vec![flag.to_string()]),
        Value::Boolean(false) => Ok(Vec::new()),
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.push(flag.to_string());
                out.push(scalar(item)?);
            }
            Ok(out)
        }
        Value::Table(_) | Value::Datetime(_) => Err(format!(
            "bad value: expected a string, a number, a boolean or an array, found {}",
            value.type_str()
        )),
        scalar_value => Ok(vec![flag.to_string(), scalar(scalar_value)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Serve;

    const SERVE: &[&str] = &["names", "serve"];

    fn parse_serve(text: &str) -> Result<FileArgs, String> {
        parse::<Serve>("test.toml", text, SERVE)
    }

    fn serve_from(args: &[String]) -> Serve {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Serve::from_args(SERVE, &args).expect("parses")
    }

    #[test]
    fn good_file() {
        let file = parse_serve(
            r#"
            # comment
            listen = ["127.0.0.1:0", "127.0.0.2:0"]
            upstream = "192.0.2.1"
            synth = ["workstation=172.0.2"]
            no_forward = true
            timeout = 3000
            log_queries = false
            "#,
        )
        .unwrap();
        let serve = serve_from(&file.merge(&[]));
        assert_eq!(serve.listen, ["127.0.0.1:0", "127.0.0.2:0"]);
        assert_eq!(serve.upstream, ["192.0.2.1"]);
        assert_eq!(serve.synth, ["workstation=172.0.2"]);
        assert!(serve.no_forward);
        assert_eq!(serve.timeout, Some(3000));
        assert!(!serve.log_queries);
    }

    #[test]
    fn unknown_key_is_named_with_the_file() {
        let err = parse_serve("listen = [\"127.0.0.1:0\"]\nlisten_on = 5\n").unwrap_err();
        assert!(err.contains("test.toml"), "{err}");
        assert!(err.contains("unknown key \"listen_on\""), "{err}");
        let err = parse_serve("no-forward = true\n").unwrap_err();
        assert!(err.contains("unknown key \"no-forward\""), "{err}");
        let err = parse_serve("config = \"other.toml\"\n").unwrap_err();
        assert!(err.contains("key \"config\""), "{err}");
    }

    #[test]
    fn bad_values_are_named_with_the_key_and_the_file() {
        for (text, key) in [
            ("timeout = \"soon\"\n", "timeout"),
            ("timeout = -5\n", "timeout"),
            ("timeout = [1, 2]\n", "timeout"),
            ("no_forward = \"yes\"\n", "no_forward"),
            ("timeout = true\n", "timeout"),
            ("timeout = false\n", "timeout"),
            ("synth = [true]\n", "synth"),
            ("listen = { a = 1 }\n", "listen"),
        ] {
            let err = parse_serve(text).unwrap_err();
            assert!(err.starts_with("config file test.toml: "), "{text}: {err}");
            assert!(err.contains(&format!("key {key:?}")), "{text}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn toml_syntax_error_names_the_file_and_line() {
        let err = parse_serve("listen = [\"127.0.0.1:0\"]\ntimeout = \n").unwrap_err();
        assert!(err.starts_with("config file test.toml, line 2: "), "{err}");
    }

    #[test]
    fn command_line_flag_replaces_the_file_value() {
        let file = parse_serve(
            "listen = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\ntimeout = 3000\nno_forward = true\nsynth = [\"a=10.0.0\"]\n",
        )
        .unwrap();
        let cli: Vec<String> = [
            "--timeout",
            "100",
            "--listen",
            "127.0.0.1:3",
            "--config",
            "x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let serve = serve_from(&file.merge(&cli));
        assert_eq!(serve.timeout, Some(100));
        assert_eq!(serve.listen, ["127.0.0.1:3"]);
        assert!(serve.no_forward);
        assert_eq!(serve.synth, ["a=10.0.0"]);
        assert_eq!(serve.config.as_deref(), Some("x"));
    }

    #[test]
    fn missing_file_is_one_line() {
        let err = load::<Serve>("/nonexistent/names.toml", SERVE).unwrap_err();
        assert!(err.contains("/nonexistent/names.toml"), "{err}");
    }
}
