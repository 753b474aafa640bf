//! Text from outside made safe to show: alert messages, labels and annotations come from
//! plugins and from names scripts chose, so none of it may drive a terminal.

use std::borrow::Cow;

/// `s` as one line a terminal shows as plain text: escape sequences (CSI such as colours
/// and cursor moves, OSC such as window titles and hyperlinks, DCS, APC, PM, SOS, and the
/// two-character ones such as a reset) are removed whole, with their C1 forms; line
/// breaks and tabs become a space; every other control character (C0, DEL, C1) and the
/// bidirectional overrides and isolates (which reorder what a reader sees) are removed.
/// Borrows when there is nothing to remove.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_care) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek().copied() {
                Some('[') => {
                    chars.next();
                    skip_control_sequence(&mut chars);
                }
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    chars.next();
                    skip_control_string(&mut chars);
                }
                Some(' '..='/') => {
                    // nF: intermediates, then one final character.
                    while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                    chars.next_if(|c| ('0'..='~').contains(c));
                }
                Some('0'..='~') => {
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_control_sequence(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_control_string(&mut chars),
            '\n' | '\r' | '\t' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push(' '),
            c if needs_care(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_care(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || c == '\u{2028}' || c == '\u{2029}'
}

/// Marks and embeddings, overrides and isolates of the Unicode bidirectional algorithm.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The rest of a CSI: parameters and intermediates, then the final character. A
/// sequence broken off by anything else ends there (that character is kept).
fn skip_control_sequence(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| ('0'..='?').contains(c)).is_some() {}
    while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
    chars.next_if(|c| ('@'..='~').contains(c));
}

/// The rest of an OSC, DCS, SOS, PM or APC: up to and including its terminator (BEL, ESC
/// `\` or ST), or to the end of the text.
fn skip_control_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' if chars.peek() == Some(&'\\') => {
                chars.next();
                return;
            }
            _ => {}
        }
    }
}

/// `s` cut to at most `max_bytes` bytes on a character boundary, ending with `…` when
/// cut (the ellipsis counted in, and left out of a budget too small for it).
pub fn truncate(s: &str, max_bytes: usize) -> Cow<'_, str> {
    if s.len() <= max_bytes {
        return Cow::Borrowed(s);
    }
    const ELLIPSIS: &str = "…";
    let ellipsis = if max_bytes >= ELLIPSIS.len() {
        ELLIPSIS
    } else {
        ""
    };
    let mut end = max_bytes - ellipsis.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{ellipsis}", &s[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_as_it_is() {
        let s = "Error rate is 15.3% (threshold: 10.0%) é ✓ 日本";
        assert!(matches!(terminal_safe(s), Cow::Borrowed(b) if b == s));
    }

    #[test]
    fn escape_sequences_are_removed_whole() {
        for (hostile, shown) in [
            ("\u{1b}[31mred\u{1b}[0m", "red"),
            ("\u{1b}[2J\u{1b}[1;1Hcleared", "cleared"),
            ("\u{1b}[?1049h\u{1b}[38;2;255;0;0mx", "x"),
            // A window title, with BEL and with ST.
            ("\u{1b}]0;pwned\u{7}title", "title"),
            ("\u{1b}]0;pwned\u{1b}\\title", "title"),
            // An OSC 8 hyperlink hiding its target.
            (
                "\u{1b}]8;;http://evil\u{1b}\\click\u{1b}]8;;\u{1b}\\",
                "click",
            ),
            // Device control (e.g. DECRQSS, whose answer a shell may read as input).
            ("\u{1b}P$q\"p\u{1b}\\after", "after"),
            ("\u{1b}_apc\u{1b}\\a\u{1b}^pm\u{7}b\u{1b}Xsos\u{9c}c", "abc"),
            // Two-character escapes: a full reset, a charset switch, keypad mode.
            ("\u{1b}cx\u{1b}(0y\u{1b}=z", "xyz"),
            // C1 forms of CSI and OSC.
            ("\u{9b}31mred", "red"),
            ("\u{9d}0;title\u{7}ok", "ok"),
            // An unterminated string swallows the rest; a lone ESC just goes.
            ("ok\u{1b}]0;never ends", "ok"),
            ("ok\u{1b}", "ok"),
            // A broken-off CSI ends where the sequence stops making sense.
            ("\u{1b}[12\u{1}x", "x"),
        ] {
            assert_eq!(terminal_safe(hostile), shown, "{hostile:?}");
        }
    }

    #[test]
    fn control_characters_go_and_line_breaks_become_spaces() {
        assert_eq!(
            terminal_safe("two\nlines\r\n\tand\u{2028}more"),
            "two lines   and more"
        );
        assert_eq!(terminal_safe("bell\u{7}\u{8}\u{0}\u{7f}\u{85}x"), "bell x");
        assert_eq!(
            terminal_safe("admin\u{202e}txt.exe\u{2066}\u{2069}\u{200f}"),
            "admintxt.exe"
        );
        // Whatever comes in, nothing a terminal acts on comes out.
        let all: String = (0u32..0x250).filter_map(char::from_u32).collect();
        assert!(!terminal_safe(&all).chars().any(needs_care));
    }

    #[test]
    fn truncation_keeps_whole_characters_within_the_budget() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("exactly10!", 10), "exactly10!");
        assert_eq!(truncate("0123456789abc", 10), "0123456…");
        let cut = truncate("ééééé", 8);
        assert!(cut.len() <= 8, "{cut}");
        assert_eq!(cut, "éé…");
        assert_eq!(truncate("anything", 3), "…");
        assert_eq!(truncate("anything", 2), "an");
    }
}
