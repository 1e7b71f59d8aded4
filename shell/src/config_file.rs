//! `--config FILE`: a TOML file that says what the `serve` flags say.
//!
//! The file is read into the same struct as the command line ([`Serve`], which derives
//! `Deserialize` with `deny_unknown_fields`): its keys are the long flag names with `-`
//! written `_` (`listen`, `no_forward`, `cache_size`, ...). A repeatable flag takes an
//! array (a single value is also accepted), a switch takes a boolean, a number an
//! integer (or a string holding one), every other flag a string:
//!
//! ```toml
//! listen = ["127.0.0.1:10053"]
//! upstream = ["192.0.2.53"]
//! synth = ["workstation=172.0.2"]
//! timeout = 3000
//! log_queries = true
//! ```
//!
//! A flag given on the command line replaces the file's value for that key. Unknown keys
//! and bad values give one error line naming the key and the file.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::cli::Serve;

/// The settings of a config file (what it does not set is left at "not given").
#[derive(Debug, Default)]
pub struct FileConfig {
    serve: Serve,
}

/// Reads and checks `path`.
pub fn load(path: &str) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {path}: {e}"))?;
    parse(path, &text)
}

/// Checks the TOML `text` of the file `path`.
pub fn parse(path: &str, text: &str) -> Result<FileConfig, String> {
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
    // Key by key first, so an error names its key.
    for (key, value) in &table {
        let mut alone = toml::Table::new();
        alone.insert(key.clone(), value.clone());
        if let Err(e) = toml::Value::Table(alone).try_into::<Serve>() {
            let message = e.message().trim().replace('\n', " ");
            return Err(if message.starts_with("unknown field") {
                format!(
                    "config file {path}: unknown key {key:?} (keys are the long flag names of `names serve` with '_' for '-')"
                )
            } else {
                format!("config file {path}: key {key:?}: bad value: {message}")
            });
        }
    }
    let serve = toml::Value::Table(table)
        .try_into::<Serve>()
        .map_err(|e| format!("config file {path}: {}", e.message().trim()))?;
    Ok(FileConfig { serve })
}

impl FileConfig {
    /// The command line `cli` on top of the file: a flag given there replaces the file's
    /// value. Also returns the keys whose value came from the file, to name in errors.
    pub fn under(self, cli: Serve) -> (Serve, Vec<&'static str>) {
        let mut file = self.serve;
        let mut from_file = Vec::new();
        macro_rules! take {
            (given: $($field:ident),*) => {$(
                let given = Given::given(&cli.$field);
                if !given && Given::given(&file.$field) {
                    from_file.push(stringify!($field));
                }
                if given {
                    file.$field = cli.$field;
                }
            )*};
        }
        take!(given: listen, upstream, resolv_conf, no_forward, synth, cache_size, min_ttl,
            max_ttl, serve_stale, minimal_responses, prefetch, timeout, try_timeout, workers, tcp_idle_ms, max_tcp,
            max_tcp_per_client, max_pipelined, max_tcp_buffered, max_inflight, max_waiting,
            config, metrics, log_level, log_queries, zone, hosts, allow_transfer, tsig_key, ixfr_versions, notify, record,
            record_max_bytes, secondary, allow_notify, zone_dir, max_transfer_bytes, forward, recursive,
            root_hints, query_localhost);
        (file, from_file)
    }
}

/// Whether a flag was given: a repeated flag at least once, an option at all, a switch on.
trait Given {
    fn given(&self) -> bool;
}

impl<T> Given for Vec<T> {
    fn given(&self) -> bool {
        !self.is_empty()
    }
}

impl<T> Given for Option<T> {
    fn given(&self) -> bool {
        self.is_some()
    }
}

impl Given for bool {
    fn given(&self) -> bool {
        *self
    }
}

/// A repeatable flag's value: an array of strings, or one string.
pub fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Strings;
    impl<'de> Visitor<'de> for Strings {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Strings)
}

/// A number: an integer, or a string holding one (as on the command line).
pub fn number<'de, D: Deserializer<'de>, T>(d: D) -> Result<Option<T>, D::Error>
where
    T: FromStr + TryFrom<u64>,
{
    struct Number<T>(std::marker::PhantomData<T>);
    impl<'de, T: FromStr + TryFrom<u64>> Visitor<'de> for Number<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer in range")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<T>, E> {
            T::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<T>, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
            v.parse()
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
    d.deserialize_any(Number(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argh::FromArgs;

    fn parse_serve(text: &str) -> Result<FileConfig, String> {
        parse("test.toml", text)
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
            try_timeout = "200"
            log_queries = false
            "#,
        )
        .unwrap();
        let (serve, from_file) = file.under(Serve::default());
        assert_eq!(serve.listen, ["127.0.0.1:0", "127.0.0.2:0"]);
        assert_eq!(serve.upstream, ["192.0.2.1"]);
        assert_eq!(serve.synth, ["workstation=172.0.2"]);
        assert!(serve.no_forward);
        assert_eq!(serve.timeout, Some(3000));
        assert_eq!(serve.try_timeout, Some(200));
        assert!(!serve.log_queries);
        assert_eq!(
            from_file,
            [
                "listen",
                "upstream",
                "no_forward",
                "synth",
                "timeout",
                "try_timeout"
            ]
        );
    }

    #[test]
    fn recursion_keys() {
        let file = parse_serve(
            "recursive = true\nroot_hints = \"/etc/root.hints\"\nquery_localhost = true\nforward = [\"corp.example=192.0.2.1,192.0.2.2\", \"lab.example=192.0.2.3\"]\n",
        )
        .unwrap();
        let (serve, from_file) = file.under(Serve::default());
        assert!(serve.recursive && serve.query_localhost);
        assert_eq!(serve.root_hints.as_deref(), Some("/etc/root.hints"));
        assert_eq!(
            serve.forward,
            ["corp.example=192.0.2.1,192.0.2.2", "lab.example=192.0.2.3"]
        );
        assert_eq!(
            from_file,
            ["forward", "recursive", "root_hints", "query_localhost"]
        );
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
            ("min_ttl = 5000000000\n", "min_ttl"),
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
        let cli = Serve::from_args(
            &["names", "serve"],
            &[
                "--timeout",
                "100",
                "--listen",
                "127.0.0.1:3",
                "--config",
                "x",
            ],
        )
        .unwrap();
        let (serve, from_file) = file.under(cli);
        assert_eq!(serve.timeout, Some(100));
        assert_eq!(serve.listen, ["127.0.0.1:3"]);
        assert!(serve.no_forward);
        assert_eq!(serve.synth, ["a=10.0.0"]);
        assert_eq!(serve.config.as_deref(), Some("x"));
        assert_eq!(from_file, ["no_forward", "synth"]);
    }

    #[test]
    fn missing_file_is_one_line() {
        let err = load("/nonexistent/names.toml").unwrap_err();
        assert!(err.contains("/nonexistent/names.toml"), "{err}");
    }
}
