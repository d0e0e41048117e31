//! The parts of the `kafkit` command that other tools share.

pub mod report;
