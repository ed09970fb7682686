//! The program a cluster runs, as it travels: the texts of the script and
//! its modules, how the files import each other, and the id its functions
//! are numbered from. A worker parses and resolves it exactly as the
//! script's process did, so every function has the same id there and
//! travels as its id with its captured values, as to a local worker.
//! It is stored once per run under a hash of its bytes.

use std::hash::Hasher;
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};

use crate::report::{Part, Source};
use crate::resolve::ir::Program;
use crate::resolve::modules::{Bound, Unit};
use crate::syntax::Span;

/// The program of this run, ready to travel (set when the script is
/// compiled; none at the prompt).
static CURRENT: Mutex<Option<Arc<Shipped>>> = Mutex::new(None);

pub struct Shipped {
    pub hash: String,
    pub blob: Vec<u8>,
}

fn span(span: Span) -> Json {
    json!([span.start, span.end])
}

fn unspan(value: &Json) -> Span {
    let at = |i: usize| value.get(i).and_then(Json::as_u64).unwrap_or(0) as u32;
    Span { start: at(0), end: at(1) }
}

/// Records the script just compiled (`first_id`: the id its functions
/// were numbered from).
pub fn remember(units: &[Unit], source: &Source, first_id: u32) {
    let parts: Vec<Json> = match source.parts.is_empty() {
        true => vec![json!([0, &*source.name])],
        false => source.parts.iter().map(|p| json!([p.start, &*p.name])).collect(),
    };
    let units: Vec<Json> = units
        .iter()
        .map(|u| {
            let imports: Vec<Json> =
                u.imports.iter().map(|b| json!([b.alias, span(b.span), &*b.prefix, &*b.module])).collect();
            json!({
                "prefix": &*u.prefix,
                "name": &*u.name,
                "path": u.path.as_ref().map(|p| p.display().to_string()),
                "imported_at": span(u.imported_at),
                "imports": imports,
            })
        })
        .collect();
    let shipment = json!({
        "concsh": env!("CARGO_PKG_VERSION"),
        "first_id": first_id,
        "name": &*source.name,
        "text": &*source.text,
        "parts": parts,
        "units": units,
    });
    let blob = shipment.to_string().into_bytes();
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(&blob);
    let hash = format!("{:016x}{:x}", hasher.finish(), blob.len());
    if let Ok(mut current) = CURRENT.lock() {
        *current = Some(Arc::new(Shipped { hash, blob }));
    }
}

/// The program of this run, if it can travel.
pub fn current() -> Option<Arc<Shipped>> {
    CURRENT.lock().ok().and_then(|c| c.clone())
}

/// A program from its bytes: parsed and resolved as on the script's side.
pub fn load(blob: &[u8]) -> Result<(Program, Source), String> {
    let shipment: Json = serde_json::from_slice(blob).map_err(|e| format!("a program that does not read: {e}"))?;
    let version = shipment["concsh"].as_str().unwrap_or("?");
    if version != env!("CARGO_PKG_VERSION") {
        return Err(format!(
            "the script runs concsh {version} and this worker concsh {}: run workers of the script's version",
            env!("CARGO_PKG_VERSION")
        ));
    }
    let text = shipment["text"].as_str().unwrap_or("");
    let name = shipment["name"].as_str().unwrap_or("<script>");
    let parts: Vec<Part> = shipment["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Part { start: p[0].as_u64().unwrap_or(0) as u32, name: p[1].as_str().unwrap_or("").into() })
        .collect();
    let mut units = Vec::new();
    for unit in shipment["units"].as_array().into_iter().flatten() {
        let unit_name = unit["name"].as_str().unwrap_or("");
        let k = parts.iter().position(|p| &*p.name == unit_name).unwrap_or(0);
        let start = parts.get(k).ok_or("a program without its texts")?.start as usize;
        let end = parts.get(k + 1).map_or(text.len(), |p| p.start as usize);
        let own = text.get(start..end).ok_or("a program whose parts do not fit its text")?;
        // Parsed at its place in the whole text, as the script's side did.
        let ast = crate::syntax::parse(&format!("{}{own}", " ".repeat(start)))
            .map_err(|_| format!("{unit_name} does not parse on this worker"))?;
        let imports = unit["imports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| Bound {
                alias: b[0].as_str().unwrap_or("").to_string(),
                span: unspan(&b[1]),
                prefix: b[2].as_str().unwrap_or("").into(),
                module: b[3].as_str().unwrap_or("").into(),
            })
            .collect();
        units.push(Unit {
            ast,
            prefix: unit["prefix"].as_str().unwrap_or("").into(),
            name: unit_name.into(),
            path: unit["path"].as_str().map(Into::into),
            imported_at: unspan(&unit["imported_at"]),
            imports,
        });
    }
    let first_id = shipment["first_id"].as_u64().unwrap_or(1) as u32;
    crate::resolve::function_ids_from(first_id);
    let program = crate::resolve::resolve_with(&units, &mut crate::resolve::Globals::default())
        .map_err(|errors| format!("the program does not resolve on this worker ({} errors)", errors.len()))?;
    let source = Source::new(name, "").parted(text, if parts.len() > 1 { parts } else { Vec::new() });
    Ok((program, source))
}
