//! proptest strategies shared by the generated `Struct::strategy` functions.

use crate::wire::RawTaggedField;
use crate::Uuid;
use bytes::Bytes;
use proptest::prelude::*;

/// Short strings, including non-ASCII.
pub fn string() -> BoxedStrategy<String> {
    proptest::collection::vec(prop_oneof![Just('a'), Just('z'), Just('-'), Just('é'), Just('日')], 0..6)
        .prop_map(|c| c.into_iter().collect())
        .boxed()
}
/// Short byte strings.
pub fn bytes() -> BoxedStrategy<Bytes> {
    proptest::collection::vec(any::<u8>(), 0..8).prop_map(Bytes::from).boxed()
}
/// Any UUID.
pub fn uuid() -> BoxedStrategy<Uuid> {
    any::<[u8; 16]>().prop_map(Uuid::from_bytes).boxed()
}
/// Finite floats (NaN would not equal itself after a round trip).
pub fn f64() -> BoxedStrategy<f64> {
    any::<i32>().prop_map(|x| x as f64 / 8.0).boxed()
}
/// Unknown tagged fields, in ascending tag order, with tags no schema uses; none when the
/// version is not flexible.
pub fn unknown_tagged(flex: bool) -> BoxedStrategy<Vec<RawTaggedField>> {
    if !flex {
        return Just(Vec::new()).boxed();
    }
    proptest::collection::btree_map(1000u32..1010, bytes(), 0..3)
        .prop_map(|m| m.into_iter().map(|(tag, data)| RawTaggedField { tag, data }).collect())
        .boxed()
}
