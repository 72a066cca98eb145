//! whystuck: say why a Linux process is stuck, with the evidence.
//!
//! Data flows one way: [`collect`] reads /proc into a [`snapshot::Snapshot`]
//! of raw facts, [`classify`] turns facts into verdicts with structured
//! evidence, [`describe`] words them, [`report`] assembles what a user is
//! told, and [`render`] prints it. [`linux`] holds the kernel knowledge both
//! sides read. ARCHITECTURE.md says where a new fact goes.

pub mod classify;
pub mod cli;
pub mod collect;
pub mod describe;
pub mod error;
pub mod linux;
pub mod privilege;
pub mod redact;
pub mod render;
pub mod report;
pub mod schema;
pub mod selection;
pub mod snapshot;
pub mod text;
pub mod watch;
