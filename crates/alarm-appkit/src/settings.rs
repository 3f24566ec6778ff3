//! Settings declared once: each with its flag, environment variable, file key, default, range and help in one line of a [`crate::settings!`] group, from which `--help`, the file reader, `--print-config` and the errors naming a bad setting all come.
//!
//! Every value arrives as text (command line or environment through clap,
//! else the `--config` TOML file, else the declared default), passes
//! through one [`Resolve`] step, then is parsed into its type by
//! [`Setting`] and checked against its declared range. Precedence:
//! command line > environment > `--config` file > default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::{ConfigError, LogFormat, bad};

/// The step every raw value passes before it is parsed: the apps'
/// alarm-host's `SecretRefs` replaces `{vault:name}` references here,
/// without touching any setting.
pub trait Resolve {
    /// The value to parse for `setting`, given what the operator wrote.
    ///
    /// # Errors
    /// A reference that cannot be resolved, named by `setting`.
    fn resolve(&self, setting: &'static str, raw: String) -> Result<String, ConfigError>;

    /// [`Resolve::resolve`] for a secret setting (`DATABASE_URL`,
    /// `SMTP_PASSWORD`, …): the value stays a [`secrecy::SecretString`].
    ///
    /// # Errors
    /// A reference that cannot be resolved, named by `setting`.
    fn resolve_secret(
        &self,
        _setting: &'static str,
        raw: secrecy::SecretString,
    ) -> Result<secrecy::SecretString, ConfigError> {
        Ok(raw)
    }
}

/// The settings whose value came from a secret reference: `--print-config`
/// and parse errors do not show those values (the reference may have named
/// a secret for a setting that is not one).
static FROM_REFERENCE: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Records that `setting`'s value came from a secret reference (called by
/// the resolver that expanded it).
pub fn mark_from_reference(setting: &'static str) {
    FROM_REFERENCE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(setting);
}

/// Whether `setting`'s value came from a secret reference.
pub fn from_reference(setting: &'static str) -> bool {
    FROM_REFERENCE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .contains(setting)
}

/// What `--print-config` shows for a value that came from a reference.
pub const FROM_REFERENCE_SHOWN: &str = "\"[from a secret reference]\"";

/// Values are used as written.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsWritten;

impl Resolve for AsWritten {
    fn resolve(&self, _setting: &'static str, raw: String) -> Result<String, ConfigError> {
        Ok(raw)
    }
}

/// A type a setting can have: parsed from text, shown by `--print-config`.
pub trait Setting: Sized {
    /// Parses what the operator wrote.
    ///
    /// # Errors
    /// Why the text is not a value of this type.
    fn parse(text: &str) -> Result<Self, String>;
    /// The value of a setting nobody set and that declares no default:
    /// `None` means the setting is required.
    fn absent() -> Option<Self> {
        None
    }
    /// The value as `--print-config` shows it (TOML-like).
    fn show(&self) -> String;
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl Setting for $t {
            fn parse(text: &str) -> Result<Self, String> {
                text.trim()
                    .parse()
                    .map_err(|_| format!("must be a whole number, got {text:?}"))
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
        impl Bounded for $t {
            type Bound = $t;
            fn bounded(&self) -> Option<$t> {
                Some(*self)
            }
        }
        impl Bounded for Option<$t> {
            type Bound = $t;
            fn bounded(&self) -> Option<$t> {
                *self
            }
        }
    )*};
}
numbers!(u16, u32, u64, usize);

impl Setting for bool {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            other => Err(format!("must be true or false, got {other:?}")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Setting for String {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            Err("must not be empty".to_owned())
        } else {
            Ok(text.to_owned())
        }
    }
    fn show(&self) -> String {
        format!("{self:?}")
    }
}

impl Setting for PathBuf {
    fn parse(text: &str) -> Result<Self, String> {
        String::parse(text).map(PathBuf::from)
    }
    fn show(&self) -> String {
        format!("{:?}", self.display().to_string())
    }
}

impl Setting for SocketAddr {
    fn parse(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an address like 127.0.0.1:8080"))
    }
    fn show(&self) -> String {
        format!("\"{self}\"")
    }
}

impl Setting for LogFormat {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "auto" => Ok(LogFormat::Auto),
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            other => Err(format!("must be auto, json or pretty, got {other:?}")),
        }
    }
    fn show(&self) -> String {
        format!("{:?}", self.as_str())
    }
}

/// A comma-separated list (a TOML array in the file); blanks are dropped.
impl Setting for Vec<String> {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }
    fn absent() -> Option<Self> {
        Some(Vec::new())
    }
    fn show(&self) -> String {
        format!(
            "[{}]",
            self.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// An optional setting: absent unless set.
impl<T: Setting> Setting for Option<T> {
    fn parse(text: &str) -> Result<Self, String> {
        T::parse(text).map(Some)
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
    fn show(&self) -> String {
        match self {
            Some(v) => v.show(),
            None => "\"(none)\"".to_owned(),
        }
    }
}

/// A number a declared range applies to (`None`: an optional setting left
/// unset, which no range refuses).
pub trait Bounded {
    /// The number's type.
    type Bound: PartialOrd + std::fmt::Display + Copy;
    /// The value to check, if any.
    fn bounded(&self) -> Option<Self::Bound>;
}

/// Checks a declared range, naming the setting.
///
/// # Errors
/// Outside `range`.
pub fn within<T: Bounded>(
    setting: &'static str,
    value: &T,
    range: std::ops::RangeInclusive<T::Bound>,
) -> Result<(), ConfigError> {
    match value.bounded() {
        Some(v) if !range.contains(&v) => Err(bad(
            setting,
            format!("must be {}..={}, got {v}", range.start(), range.end()),
        )),
        _ => Ok(()),
    }
}

/// One setting's value from its raw text (else its default), resolved and
/// parsed, with errors naming `setting`.
///
/// # Errors
/// Unresolvable, unparsable, or required and missing.
pub fn value<T: Setting>(
    setting: &'static str,
    raw: Option<String>,
    default: Option<&'static str>,
    resolver: &dyn Resolve,
) -> Result<T, ConfigError> {
    let text = match raw {
        Some(raw) => Some(resolver.resolve(setting, raw)?),
        None => default.map(str::to_owned),
    };
    match text {
        Some(text) => T::parse(&text).map_err(|reason| {
            if from_reference(setting) {
                bad(
                    setting,
                    "the value its secret reference gave is not valid here (not shown)",
                )
            } else {
                bad(setting, reason)
            }
        }),
        None => T::absent().ok_or_else(|| bad(setting, "is required")),
    }
}

/// The `--config` TOML file, read once; each group takes its keys, and a
/// key nobody took is an error (a typo must not be ignored silently).
#[derive(Debug, Default)]
pub struct ConfigFile {
    table: toml::Table,
}

impl ConfigFile {
    /// The file at `path`, or an empty one without a path.
    ///
    /// # Errors
    /// Unreadable file or bad TOML, named `--config`.
    pub fn read(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("--config", format!("cannot read `{}`: {e}", path.display())))?;
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| bad("--config", e.to_string()))?;
        Ok(Self { table })
    }

    /// Removes `key` and returns its value as text (arrays joined by commas).
    ///
    /// # Errors
    /// A table or a date where a plain value belongs, named `--config`.
    pub fn take(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.table.remove(key) else {
            return Ok(None);
        };
        let plain = |v: &toml::Value| match v {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Float(f) => Some(f.to_string()),
            toml::Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        };
        let text = match &value {
            toml::Value::Array(items) => items
                .iter()
                .map(plain)
                .collect::<Option<Vec<_>>>()
                .map(|items| items.join(",")),
            other => plain(other),
        };
        text.map(Some).ok_or_else(|| {
            bad(
                "--config",
                format!("`{key}` must be a plain value or a list"),
            )
        })
    }

    /// Refuses keys no group took.
    ///
    /// # Errors
    /// The first unknown key, named `--config`.
    pub fn finish(self) -> Result<(), ConfigError> {
        match self.table.keys().next() {
            None => Ok(()),
            Some(key) => Err(bad("--config", format!("unknown setting `{key}`"))),
        }
    }
}

/// Declares a group of settings once. Each line is
/// `/// help` then `name: Type = "default", "ENV_VAR" [, lo..=hi];`
/// (the default may be left out for types with an absent value: `Option`,
/// `Vec<String>`; a `switch` after the range lets `--name` stand alone for
/// `true`). The macro writes the clap arguments (`--name`, `ENV_VAR`, the
/// help with range and default), the typed values, their resolution from
/// command line, environment, file and default, and their description for
/// `--print-config`.
#[macro_export]
macro_rules! settings {
    (
        $(#[doc = $doc:literal])*
        $vis:vis struct $args:ident => $values:ident {
            $(
                #[doc = $help:literal]
                $name:ident: $ty:ty $(= $default:literal)?, $env:literal
                    $(, $lo:literal ..= $hi:literal)? $(, $switch:ident)?;
            )*
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Default, clap::Args)]
        #[allow(unreachable_pub)]
        $vis struct $args {
            $(
                #[arg(
                    long,
                    env = $env,
                    value_name = "VALUE",
                    // `///` lines arrive with their leading space.
                    help = concat!(
                        $help,
                        $(" (", stringify!($lo), "..=", stringify!($hi), ")",)?
                        $(" [default: ", $default, "]",)?
                    ).trim_ascii_start()
                    $(, num_args = 0..=1, default_missing_value = { let _ = stringify!($switch); "true" })?
                )]
                $name: Option<String>,
            )*
        }

        $(#[doc = $doc])*
        #[derive(Debug, Clone)]
        #[allow(unreachable_pub)]
        $vis struct $values {
            $(
                #[doc = $help]
                pub $name: $ty,
            )*
        }

        #[allow(unreachable_pub)]
        impl $args {
            /// Every setting of the group: command line or environment,
            /// else the file's key, else the default; resolved, parsed and
            /// range-checked, each error naming its environment variable.
            ///
            /// # Errors
            /// The first bad setting.
            pub fn resolve(
                &self,
                file: &mut $crate::settings::ConfigFile,
                resolver: &dyn $crate::settings::Resolve,
            ) -> Result<$values, $crate::ConfigError> {
                Ok($values {
                    $(
                        $name: {
                            // Taken even when overridden, so that only keys
                            // no group declares are left as unknown.
                            let from_file = file.take(stringify!($name))?;
                            let raw = self.$name.clone().or(from_file);
                            let default: Option<&'static str> = None $(.or(Some($default)))?;
                            let value: $ty = $crate::settings::value($env, raw, default, resolver)?;
                            $($crate::settings::within($env, &value, $lo..=$hi)?;)?
                            value
                        },
                    )*
                })
            }
        }

        #[allow(unreachable_pub)]
        impl $values {
            /// The group for `--print-config`, one `name = value` line each.
            pub fn describe(&self) -> Vec<String> {
                vec![$(
                    format!(
                        "{} = {}",
                        stringify!($name),
                        if $crate::settings::from_reference($env) {
                            $crate::settings::FROM_REFERENCE_SHOWN.to_owned()
                        } else {
                            $crate::settings::Setting::show(&self.$name)
                        }
                    ),
                )*]
            }
        }
    };
}
