//! API versions as a type, not a bare `i16`.

use std::fmt;

/// The version of one Kafka API, as sent in the request header's `request_api_version`.
///
/// Every API has its own version numbering (Produce v9 and Fetch v9 are unrelated).
/// Construct one with [`ApiVersion::new`] or `ApiVersion::from(9)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ApiVersion(pub i16);

impl ApiVersion {
    /// An API version from its number.
    pub const fn new(v: i16) -> Self {
        ApiVersion(v)
    }
    /// The version number.
    pub const fn get(self) -> i16 {
        self.0
    }
}

impl From<i16> for ApiVersion {
    fn from(v: i16) -> Self {
        ApiVersion(v)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// An inclusive range of API versions, such as a message's `validVersions` (`0-11`) or
/// `flexibleVersions` (`9+`). The empty range (`none` in the schemas) has `min > max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// Lowest version in the range.
    pub min: i16,
    /// Highest version in the range (`i16::MAX` for an open range such as `9+`).
    pub max: i16,
}

impl VersionRange {
    /// The range that contains no version (`none` in the schemas).
    pub const NONE: VersionRange = VersionRange { min: 0, max: -1 };

    /// `min..=max`.
    pub const fn new(min: i16, max: i16) -> Self {
        VersionRange { min, max }
    }
    /// Whether `v` is in the range.
    pub const fn contains(self, v: ApiVersion) -> bool {
        v.0 >= self.min && v.0 <= self.max
    }
    /// Whether the range holds no version.
    pub const fn is_empty(self) -> bool {
        self.min > self.max
    }
    /// The highest version in both `self` and `other`: what a client and a broker that
    /// advertise these ranges can both speak. `None` when they share no version.
    pub fn highest_common(self, other: VersionRange) -> Option<ApiVersion> {
        let lo = self.min.max(other.min);
        let hi = self.max.min(other.max);
        (lo <= hi).then_some(ApiVersion(hi))
    }
    /// Every version in the range, lowest first.
    pub fn iter(self) -> impl Iterator<Item = ApiVersion> {
        (self.min..=self.max).map(ApiVersion)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("none")
        } else if self.max == i16::MAX {
            write!(f, "{}+", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}
