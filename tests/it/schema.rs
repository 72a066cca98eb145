//! The JSON Schemas in schema/ are the ones the types generate: a change to
//! what whystuck writes changes them in the same commit (`WHYSTUCK_BLESS=1`
//! rewrites them; review the diff). The Python tests validate every
//! fixture's output against them.

use std::path::Path;

#[test]
fn committed_schemas_are_the_generated_ones() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let bless = std::env::var_os("WHYSTUCK_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, schema) in whystuck::schema::all() {
        let path = dir.join(format!("{name}.json"));
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &generated).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(generated.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; rerun with WHYSTUCK_BLESS=1 and review git diff schema/"
    );
}

/// Every schema says what it describes and is a JSON Schema document.
#[test]
fn each_schema_names_its_document() {
    for (name, schema) in whystuck::schema::all() {
        let json = serde_json::to_value(&schema).unwrap();
        assert!(
            json["$schema"].as_str().is_some_and(|s| s.contains("json-schema.org")),
            "{name}"
        );
        assert!(
            json["title"].is_string() && json["properties"].is_object(),
            "{name}: {json:#}"
        );
    }
}
