//! A job's uid as it is kept in memory for every job of a large queue: 16 bytes inline when it
//! is a canonical lower-case UUID (what clients write), its text otherwise (any other folder
//! name). Each text has exactly one form, so equality and hashing are those of the text.

use std::fmt;

/// Where the dashes of a canonical UUID's text are.
const DASHES: [usize; 4] = [8, 13, 18, 23];

/// `uid` as 16 bytes if it is a canonical UUID in lower case (its text is then exactly what
/// [`format_uuid`] gives back).
pub(crate) fn parse_uuid(uid: &str) -> Option<[u8; 16]> {
    let b = uid.as_bytes();
    if b.len() != 36 || DASHES.iter().any(|&i| b.get(i) != Some(&b'-')) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    let mut hex = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !DASHES.contains(i))
        .map(|(_, c)| *c);
    for byte in &mut out {
        *byte = (digit(hex.next()?)? << 4) | digit(hex.next()?)?;
    }
    Some(out)
}

/// The text of a UUID stored by [`parse_uuid`].
pub(crate) fn format_uuid(u: &[u8; 16]) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut pos = (0..36).filter(|i| !DASHES.contains(i));
    for byte in u {
        for nibble in [byte >> 4, byte & 15] {
            if let Some(p) = pos.next()
                && let Some(at) = out.get_mut(p)
            {
                *at = HEX[usize::from(nibble)];
            }
        }
    }
    out
}

/// The text of a formatted UUID (only hex digits and dashes are ever in it).
pub(crate) fn uuid_str(b: &[u8; 36]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// A uid in 24 bytes, with nothing on the heap when it is a canonical UUID. Ordered (UUIDs first,
/// by their bytes) so a listing of them can be sorted and searched.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Uid {
    Uuid([u8; 16]),
    Text(Box<str>),
}

impl Uid {
    pub(crate) fn new(uid: &str) -> Uid {
        parse_uuid(uid).map_or_else(|| Uid::Text(uid.into()), Uid::Uuid)
    }

    /// Calls `f` with the uid's text (formatted on the stack for a UUID).
    pub(crate) fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Uid::Uuid(u) => f(uuid_str(&format_uuid(u))),
            Uid::Text(t) => f(t),
        }
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| f.write_str(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_kept_in_16_bytes_and_come_back_as_written() {
        let u = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
        assert!(matches!(Uid::new(u), Uid::Uuid(_)));
        assert_eq!(Uid::new(u).to_string(), u);
        for odd in [
            "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D",
            "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d",
            "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4",
            "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4dd",
            "0a1b2c3d+4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3cég",
            "",
        ] {
            assert_eq!(parse_uuid(odd), None, "{odd}");
            assert_eq!(Uid::new(odd), Uid::Text(odd.into()));
            assert_eq!(Uid::new(odd).to_string(), odd);
        }
        assert_ne!(
            Uid::new(u),
            Uid::new("0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"),
            "as different as their folder names"
        );
        assert_eq!(std::mem::size_of::<Uid>(), 24);
    }
}
