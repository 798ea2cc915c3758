//! SMS length: which encoding a text needs and how many segments it costs.
//! GSM-7 (the 3GPP TS 23.038 default alphabet, with its extension table
//! counting two septets a character) fits 160 characters in one segment and
//! 153 per segment when split; anything outside it forces UCS-2, with 70 in
//! one segment and 67 per segment when split (characters outside the Basic
//! Multilingual Plane take two UTF-16 units).

use std::fmt;

/// The encoding a text needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    /// What one unsplit segment holds: GSM-7 septets or UTF-16 units.
    pub const fn single_segment(self) -> usize {
        match self {
            Encoding::Gsm7 => 160,
            Encoding::Ucs2 => 70,
        }
    }

    /// What each segment of a split text holds: the rest of each carries
    /// the header that joins the parts again.
    const fn split_segment(self) -> usize {
        match self {
            Encoding::Gsm7 => 153,
            Encoding::Ucs2 => 67,
        }
    }

    /// The segments `units` cost in this encoding.
    fn segments(self, units: usize) -> usize {
        if units <= self.single_segment() {
            1
        } else {
            units.div_ceil(self.split_segment())
        }
    }
}

/// The size of an SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    pub segments: usize,
}

impl fmt::Display for Segments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, unit) = match self.encoding {
            Encoding::Gsm7 => ("GSM-7", "characters"),
            Encoding::Ucs2 => ("UCS-2", "UTF-16 units"),
        };
        write!(
            f,
            "{} {unit}, {name}, {} segment{}",
            self.units,
            self.segments,
            if self.segments == 1 { "" } else { "s" }
        )
    }
}

const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// Measures a text as an SMS.
pub fn measure(text: &str) -> Segments {
    let mut septets: usize = 0;
    let mut gsm = true;
    for c in text.chars() {
        if BASIC.contains(c) {
            septets += 1;
        } else if EXTENSION.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (encoding, units) = if gsm {
        (Encoding::Gsm7, septets)
    } else {
        (Encoding::Ucs2, text.chars().map(char::len_utf16).sum())
    };
    Segments {
        encoding,
        units,
        segments: encoding.segments(units),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_gsm7() {
        let s = measure("Hi Ana, your interview: https://x.example/i/abc Reply STOP to opt out");
        assert_eq!(s.encoding, Encoding::Gsm7);
        assert_eq!(s.segments, 1);
        assert_eq!(measure(&"a".repeat(160)).segments, 1);
        assert_eq!(measure(&"a".repeat(161)).segments, 2);
        assert_eq!(measure(&"a".repeat(306)).segments, 2);
        assert_eq!(measure(&"a".repeat(307)).segments, 3);
    }

    #[test]
    fn extension_characters_count_twice() {
        let s = measure("€{}");
        assert_eq!((s.encoding, s.units), (Encoding::Gsm7, 6));
    }

    #[test]
    fn accents_outside_the_alphabet_force_ucs2() {
        // `é` is in GSM-7, `á` is not.
        assert_eq!(measure("café").encoding, Encoding::Gsm7);
        let s = measure("Hola María");
        assert_eq!(s.encoding, Encoding::Ucs2);
        assert_eq!(measure(&"á".repeat(70)).segments, 1);
        assert_eq!(measure(&"á".repeat(71)).segments, 2);
        // `¿`, `¡` and `ñ` are in GSM-7's basic set: Spanish keeps 160.
        assert_eq!(measure("¿Hola Ñoño? ¡Sí!").encoding, Encoding::Ucs2);
        assert_eq!(measure("¿Hola Ñoño? ¡Si!").encoding, Encoding::Gsm7);
        // An emoji is two UTF-16 units.
        assert_eq!(measure("👍").units, 2);
    }
}
