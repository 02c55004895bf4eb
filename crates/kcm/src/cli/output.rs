//! How client commands print results: readable text by default, JSON on request.
//!
//! Results are the typed bodies of the APIs; they are printed through their JSON
//! form, so text and JSON output show the same fields under the same names.

use serde::Serialize;
use serde_json::Value;

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable.
    Text,
    /// JSON, for scripts.
    Json,
}

/// Prints `value` as JSON, or as `name: value` lines.
pub fn object(format: Format, value: &impl Serialize) {
    let value = json(value);
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ),
        Format::Text => print_fields(&value, 0),
    }
}

/// Prints `value` as JSON, or as the text `describe` makes of it (ending in a
/// newline): for results that read better as a sentence or a drawing than as
/// `name: value` lines.
pub fn object_or_text<T: Serialize>(
    format: Format,
    value: &T,
    describe: impl FnOnce(&T) -> String,
) {
    match format {
        Format::Json => object(format, value),
        Format::Text => print!("{}", describe(value)),
    }
}

/// The JSON form of a result (a body that does not serialise prints as `-`).
fn json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        // A list of names (an access key's operations) reads best as `A,B,C`.
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// A value as a table cell shows it (`-` for none, `A,B` for a list of names).
pub fn cell(value: &impl Serialize) -> String {
    scalar(&json(value))
}

fn print_fields(value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(_) => {
                        println!("{pad}{k}:");
                        print_fields(v, indent + 2);
                    }
                    Value::Array(items) if items.iter().any(|i| i.is_object()) => {
                        println!("{pad}{k}:");
                        for item in items {
                            println!("{pad}  -");
                            print_fields(item, indent + 4);
                        }
                    }
                    Value::Array(items) => {
                        let list: Vec<String> = items.iter().map(scalar).collect();
                        println!("{pad}{k}: {}", list.join(", "));
                    }
                    other => println!("{pad}{k}: {}", scalar(other)),
                }
            }
        }
        other => println!("{pad}{}", scalar(other)),
    }
}

/// One column of a table: its name (the header, upper-cased) and how a row shows in it.
pub struct Column<'a, R> {
    name: &'a str,
    cell: Box<dyn Fn(&R) -> String + 'a>,
}

impl<'a, R> Column<'a, R> {
    /// A column `name` whose cells are `cell(row)`.
    pub fn new(name: &'a str, cell: impl Fn(&R) -> String + 'a) -> Self {
        Self {
            name,
            cell: Box::new(cell),
        }
    }
}

/// Columns named after fields of a typed row, so that a renamed field is a build
/// error here rather than an empty column: `columns!(System: id, name, status)`.
macro_rules! columns {
    ($row:ty: $($field:ident),+ $(,)?) => {
        vec![$(
            $crate::cli::output::Column::new(stringify!($field), |row: &$row| {
                $crate::cli::output::cell(&row.$field)
            })
        ),+]
    };
}
pub(crate) use columns;

/// Columns of untyped JSON rows (AWS API answers), by member name.
pub fn json_columns<'a>(names: &'a [&'a str]) -> Vec<Column<'a, Value>> {
    names
        .iter()
        .map(|name| Column::new(name, move |row: &Value| scalar(&row[*name])))
        .collect()
}

/// Prints rows as JSON (the whole `value`), or a table of `columns` of `rows`.
pub fn table<R>(format: Format, value: &impl Serialize, rows: &[R], columns: &[Column<'_, R>]) {
    if format == Format::Json {
        return object(format, value);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| (c.cell)(r)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
                .max(c.name.len())
        })
        .collect();
    let line = |items: Vec<String>| {
        let padded: Vec<String> = items
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|c| c.name.to_uppercase()).collect());
    for row in cells {
        line(row);
    }
}
