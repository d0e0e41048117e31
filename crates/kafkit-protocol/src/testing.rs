//! proptest strategies shared by the generated `Struct::strategy` functions.

use crate::wire::RawTaggedField;
use crate::Uuid;
use bytes::Bytes;
use proptest::prelude::*;

/// Strings, including non-ASCII; mostly short, sometimes past 127 bytes so compact lengths
/// take two varint bytes.
pub fn string() -> BoxedStrategy<String> {
    let ch = prop_oneof![Just('a'), Just('z'), Just('-'), Just('é'), Just('日')];
    prop_oneof![
        8 => proptest::collection::vec(ch.clone(), 0..6),
        1 => proptest::collection::vec(ch, 60..200),
    ]
    .prop_map(|c| c.into_iter().collect())
    .boxed()
}
/// Byte strings; mostly short, sometimes past 127 bytes.
pub fn bytes() -> BoxedStrategy<Bytes> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..8),
        1 => proptest::collection::vec(any::<u8>(), 120..300),
    ]
    .prop_map(Bytes::from)
    .boxed()
}
/// Arrays of a primitive; mostly short, sometimes past 127 elements.
pub fn prim_vec<T: std::fmt::Debug + 'static>(elem: BoxedStrategy<T>) -> BoxedStrategy<Vec<T>> {
    prop_oneof![
        8 => proptest::collection::vec(elem.clone(), 0..3),
        1 => proptest::collection::vec(elem, 120..140),
    ]
    .boxed()
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
