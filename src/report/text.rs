//! Text many summaries share: a campaign's name, a variant, a channel, a
//! source, a zone. A report over a million enrollments holds a handful of
//! distinct values of each, so a summary holds counted references to one
//! copy ([`Text`]), handed out by an [`Interner`] while the summaries are
//! made, instead of a string of its own per field.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use foldhash::{HashSet, HashSetExt};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A shared, immutable string; compares, orders and hashes as its text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Arc<str>);

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Arc::from(s))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Arc::from(s))
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        String::deserialize(d).map(Text::from)
    }
}

/// An experiment's variant per experiment, shared like [`Text`].
pub type Variants = Arc<BTreeMap<Text, Text>>;

/// A set of names in name order (channels sent on, bounced on), shared.
pub type Names = Arc<[Text]>;

/// Hands out one [`Text`] per distinct string, and one [`Variants`] or
/// [`Names`] per distinct set, so the summaries made through it share
/// them. The sets are kept in a short list: a report meets few distinct
/// ones (the experiments' arms, the channels), and past [`KEPT_SETS`] a
/// new one is made without being kept.
#[derive(Default)]
pub struct Interner {
    texts: HashSet<Text>,
    variants: Vec<Variants>,
    names: Vec<Names>,
}

/// How many distinct sets of each kind an [`Interner`] keeps.
pub const KEPT_SETS: usize = 256;

impl Interner {
    pub fn new() -> Interner {
        Interner {
            texts: HashSet::with_capacity(64),
            ..Interner::default()
        }
    }

    pub fn text(&mut self, s: &str) -> Text {
        if let Some(t) = self.texts.get(s) {
            return t.clone();
        }
        let t = Text::from(s);
        self.texts.insert(t.clone());
        t
    }

    /// Variants given as (experiment, variant) pairs in experiment order.
    pub fn variants<'s>(
        &mut self,
        pairs: impl ExactSizeIterator<Item = (&'s str, &'s str)> + Clone,
    ) -> Variants {
        let found = self.variants.iter().find(|v| {
            v.len() == pairs.len()
                && v.iter()
                    .zip(pairs.clone())
                    .all(|((e, x), (e2, x2))| **e == *e2 && **x == *x2)
        });
        if let Some(v) = found {
            return v.clone();
        }
        let made: Variants = Arc::new(pairs.map(|(e, x)| (self.text(e), self.text(x))).collect());
        if self.variants.len() < KEPT_SETS {
            self.variants.push(made.clone());
        }
        made
    }

    /// Names given in name order.
    pub fn names<'s>(&mut self, names: impl ExactSizeIterator<Item = &'s str> + Clone) -> Names {
        let found = self.names.iter().find(|n| {
            n.len() == names.len() && n.iter().zip(names.clone()).all(|(a, b)| **a == *b)
        });
        if let Some(n) = found {
            return n.clone();
        }
        let made: Names = names.map(|n| self.text(n)).collect();
        if self.names.len() < KEPT_SETS {
            self.names.push(made.clone());
        }
        made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_is_one_copy() {
        let mut i = Interner::new();
        let a = i.text("email");
        let b = i.text(&String::from("email"));
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, "email");
        assert_ne!(a, i.text("sms"));
    }

    #[test]
    fn the_same_sets_are_one_copy() {
        let mut i = Interner::new();
        let pairs = [("copy", "warm"), ("time", "am")];
        let a = i.variants(pairs.iter().copied());
        let b = i.variants(pairs.iter().copied());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.get("copy").map(|t| &**t), Some("warm"));
        let c = i.variants([("copy", "short")].into_iter());
        assert!(!Arc::ptr_eq(&a, &c));
        let n = i.names(["email", "sms"].into_iter());
        assert!(Arc::ptr_eq(&n, &i.names(["email", "sms"].into_iter())));
        assert_eq!(n.len(), 2);
        assert!(i.names(std::iter::empty()).is_empty());
    }

    #[test]
    fn text_travels_as_a_string() {
        let t = Text::from("warm");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"warm\"");
        assert_eq!(serde_json::from_str::<Text>(&json).unwrap(), t);
    }
}
