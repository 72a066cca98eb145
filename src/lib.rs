//! whystuck: say why a Linux process is stuck, with the evidence.
//!
//! Data flows one way: [`collect`] reads /proc into a [`snapshot::Snapshot`]
//! of raw facts, [`classify`] turns facts into verdicts with evidence,
//! [`report`] assembles what a user is told, and [`render`] prints it.

pub mod classify;
pub mod cli;
pub mod collect;
pub mod describe;
pub mod error;
pub mod linux;
pub mod redact;
pub mod render;
pub mod report;
pub mod selection;
pub mod snapshot;
pub mod text;
pub mod watch;
