//! JSON Schemas of what whystuck writes, generated from the Rust types that
//! write it, so they cannot drift: `schema/*.json` are committed, a test
//! fails when one is stale (`WHYSTUCK_BLESS=1` rewrites them), and the
//! Python tests validate every fixture's output against them.

use crate::report::Report;
use crate::snapshot::Snapshot;
use crate::watch::event::Event;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};

/// (file stem under `schema/`, schema) for each document whystuck writes:
/// the reports as it writes them (a field left out when empty is not
/// required); snapshots as `--from` reads them (older snapshots, without
/// the fields added since, included).
pub fn all() -> Vec<(&'static str, Schema)> {
    vec![
        ("report", written::<Report>()),
        ("ndjson-line", written::<crate::render::NdjsonLine>()),
        (
            "snapshot",
            SchemaSettings::draft2020_12()
                .into_generator()
                .into_root_schema_for::<Snapshot>(),
        ),
        ("watch-event", written::<Event>()),
    ]
}

fn written<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>()
}
