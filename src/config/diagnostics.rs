//! Owns configuration errors: where one is (file, line, section with its provider or pool id,
//! field) and what is wrong, and the collector that gathers every error of one load. It must
//! not decide what is an error; the checks in `config` and `config::upstream` do.

use std::fmt;
use std::ops::Range;

use crate::error::clip;

/// The part of the configuration file an error is in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Section {
    /// The file as a whole: its syntax, its top-level keys, a missing `[[providers]]`.
    File,
    /// `[cluster]`.
    Cluster,
    /// `[sasl]`.
    Sasl,
    /// `[gateway]`.
    Gateway,
    /// `[gateway.upstream]`.
    Upstream,
    /// One `[[providers]]` entry.
    Provider(Entry),
    /// One `[[pools]]` entry.
    Pool(Entry),
    /// One `[[pools.grants]]` entry of a pool.
    Grant {
        /// The pool it belongs to.
        pool: Entry,
        /// Its position in the pool, from 1.
        n: usize,
    },
}

/// A `[[providers]]` or `[[pools]]` entry: its `id`, or its position from 1 when it has no
/// usable `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's `id`, when it is a string.
    pub id: Option<String>,
    /// Its position among the entries of its kind, from 1.
    pub position: usize,
}

impl Entry {
    pub(crate) fn new(id: Option<&str>, position: usize) -> Entry {
        Entry {
            id: id.map(str::to_owned),
            position,
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "`{}`", clip(id)),
            None => write!(f, "{}", self.position),
        }
    }
}

impl Section {
    /// The TOML header of the section: `[[providers]]`, `[gateway.upstream]`, ...; empty for
    /// [`Section::File`].
    pub fn header(&self) -> &'static str {
        match self {
            Section::File => "",
            Section::Cluster => "[cluster]",
            Section::Sasl => "[sasl]",
            Section::Gateway => "[gateway]",
            Section::Upstream => "[gateway.upstream]",
            Section::Provider(_) => "[[providers]]",
            Section::Pool(_) => "[[pools]]",
            Section::Grant { .. } => "[[pools.grants]]",
        }
    }

    /// The provider or pool id the section belongs to, when it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Section::Provider(e) | Section::Pool(e) | Section::Grant { pool: e, .. } => {
                e.id.as_deref()
            }
            _ => None,
        }
    }

    /// The place `field` of this section.
    pub(crate) fn field(&self, name: &str) -> Place {
        Place {
            section: self.clone(),
            field: Some(name.to_owned()),
        }
    }

    /// The section as a whole.
    pub(crate) fn whole(&self) -> Place {
        Place {
            section: self.clone(),
            field: None,
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::Provider(e) => write!(f, "provider {e}"),
            Section::Pool(e) => write!(f, "pool {e}"),
            Section::Grant { pool, n } => write!(f, "pool {pool}, grant {n}"),
            other => f.write_str(other.header()),
        }
    }
}

/// Where an error is, short of its line: a section and, usually, a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) section: Section,
    pub(crate) field: Option<String>,
}

/// A configuration error: where it is and what is wrong.
///
/// ```
/// use poolgate::config::Config;
/// let text = "[[providers]]\nid = \"op\"\nissuer = \"https://idp\"\naudiences = [\"kafka\"]\n\
///             jwks_file = \"jwks.json\"\nclock_skew = \"5 s\"\n";
/// let errors = Config::parse(text, "c.toml", std::path::Path::new(".")).unwrap_err();
/// let e = &errors.0[0];
/// assert_eq!((e.line, e.section.id(), e.field.as_deref()), (Some(6), Some("op"), Some("clock_skew")));
/// assert_eq!(e.context(), "provider `op`, field `clock_skew`");
/// assert!(e.to_string().starts_with("c.toml:6: provider `op`, field `clock_skew`: `5 s`"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or the name given to [`Config::parse`](super::Config::parse)).
    pub file: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The section the error is in.
    pub section: Section,
    /// The field, when the error is about one.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// What the error is about, such as "pool `analytics`, field `filter`" (empty for an error
    /// about the whole file).
    pub fn context(&self) -> String {
        let section = self.section.to_string();
        match (&self.field, section.is_empty()) {
            (None, _) => section,
            (Some(field), true) => format!("field `{}`", clip(field)),
            (Some(field), false) => format!("{section}, field `{}`", clip(field)),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let context = self.context();
        if !context.is_empty() {
            write!(f, ": {context}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in one configuration, in file order (errors without a line last).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn render(errors: &[ConfigError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => format!(
            "{} configuration errors: {}",
            many.len(),
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// Collects errors with file and line while a configuration is checked.
pub(crate) struct Diagnostics<'a> {
    file: &'a str,
    text: &'a str,
    pub(crate) errors: Vec<ConfigError>,
}

impl<'a> Diagnostics<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Diagnostics {
            file,
            text,
            errors: Vec::new(),
        }
    }

    pub(crate) fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// Records an error at `span` (its line), in `place`.
    pub(crate) fn error(
        &mut self,
        span: Option<&Range<usize>>,
        place: Place,
        message: impl Into<String>,
    ) {
        let line = span.map(|s| self.line_of(s));
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            section: place.section,
            field: place.field,
            message: message.into(),
        });
    }

    /// The errors, in file order; errors without a line keep their order, after the others.
    pub(crate) fn finish(mut self) -> ConfigErrors {
        self.errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        ConfigErrors(self.errors)
    }
}
