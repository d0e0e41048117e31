//! The protocol's 128-bit UUID (topic ids, directory ids, member ids of KIP-848).

use std::fmt;

/// A 16-byte UUID as carried by the `uuid` field type. [`Uuid::ZERO`] is the "no id" value.
///
/// Displayed as Kafka displays it: URL-safe base64 without padding (22 characters), as in
/// `kafka-topics.sh --describe`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid([u8; 16]);

impl Uuid {
    /// The all-zero UUID (Kafka's `Uuid.ZERO_UUID`).
    pub const ZERO: Uuid = Uuid([0; 16]);
    /// A UUID from its 16 bytes, most significant first.
    pub const fn from_bytes(b: [u8; 16]) -> Self {
        Uuid(b)
    }
    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
    /// Whether this is [`Uuid::ZERO`].
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bits: u32 = 0;
        let mut n = 0;
        for &b in &self.0 {
            bits = (bits << 8) | b as u32;
            n += 8;
            while n >= 6 {
                n -= 6;
                f.write_str(std::str::from_utf8(&[A[((bits >> n) & 63) as usize]]).unwrap_or("?"))?;
            }
        }
        if n > 0 {
            f.write_str(std::str::from_utf8(&[A[((bits << (6 - n)) & 63) as usize]]).unwrap_or("?"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn displays_as_kafka_base64() {
        assert_eq!(super::Uuid::ZERO.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
        let u = super::Uuid::from_bytes([0xff; 16]);
        assert_eq!(u.to_string(), "_____________________w");
    }
}
