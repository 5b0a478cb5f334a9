//! Terminal colours for human output: on only when stdout is a terminal and `NO_COLOR` is not
//! set. Written by hand: four SGR codes do not need a crate.

/// How to colour a piece of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Paint {
    /// As is.
    None,
    /// Accepted, allowed, matched.
    Good,
    /// Rejected, denied, errors.
    Bad,
    /// Warnings, partial outcomes.
    Warn,
    /// Secondary text.
    Dim,
    /// Headings.
    Bold,
}

/// Whether to colour, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colours on or off.
    pub fn new(color: bool) -> Style {
        Style { color }
    }

    /// Whether colours are on.
    pub fn color(self) -> bool {
        self.color
    }

    pub(crate) fn paint(self, text: &str, paint: Paint) -> String {
        let code = match paint {
            _ if !self.color || text.is_empty() => return text.to_owned(),
            Paint::None => return text.to_owned(),
            Paint::Good => "32",
            Paint::Bad => "31",
            Paint::Warn => "33",
            Paint::Dim => "2",
            Paint::Bold => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_when_on() {
        assert_eq!(Style::new(false).paint("ok", Paint::Good), "ok");
        assert_eq!(
            Style::new(true).paint("ok", Paint::Good),
            "\x1b[32mok\x1b[0m"
        );
        assert_eq!(Style::new(true).paint("ok", Paint::None), "ok");
    }
}
