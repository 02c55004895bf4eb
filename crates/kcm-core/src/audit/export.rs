//! The audit export format: what `kcm audit export` writes and `kcm audit verify
//! --file` reads. JSON lines, one a line: a record (`"type": "record"` and the
//! record's fields exactly as hashed), a signed checkpoint (`"type":
//! "checkpoint"`), or at most one signed head (`"type": "head"`: the chain's end when
//! the export was made, signed then, see [`super::head_message`]). An export is untrusted input to the verifier: it may come from
//! anywhere, so reading it only parses, and [`super::verify::verify_chain`] judges
//! what was read.

use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::model::{AuditCheckpoint, AuditRecord};

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ExportLine {
    /// A record of the chain (boxed: a record is several times the size of a
    /// checkpoint).
    Record(Box<AuditRecord>),
    /// A signed checkpoint of the chain.
    Checkpoint(AuditCheckpoint),
    /// The chain's signed head when the export was made.
    Head(AuditCheckpoint),
}

/// What an export holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Export {
    /// The records, in the order of the export.
    pub records: Vec<AuditRecord>,
    /// The checkpoints, in the order of the export.
    pub checkpoints: Vec<AuditCheckpoint>,
    /// The signed head, when the export has one.
    pub head: Option<AuditCheckpoint>,
}

/// Why an export could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The export could not be read (or is not UTF-8).
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    /// A line (counted from 1) is not an export line.
    #[error("line {line}: not an audit export line: {source}")]
    Line {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        source: serde_json::Error,
    },
    /// A second head: an export is made at one moment, so it has one.
    #[error("line {line}: a second signed head (an export has at most one)")]
    SecondHead {
        /// The line number, from 1.
        line: usize,
    },
}

/// The records, checkpoints and head of an export. Blank lines are skipped; any
/// other line that is not an [`ExportLine`] is refused, and so is a second head.
pub fn read_export(reader: impl BufRead) -> Result<Export, ExportError> {
    let mut export = Export::default();
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<ExportLine>(&line).map_err(|source| ExportError::Line {
            line: n + 1,
            source,
        })? {
            ExportLine::Record(r) => export.records.push(*r),
            ExportLine::Checkpoint(c) => export.checkpoints.push(c),
            ExportLine::Head(h) if export.head.is_none() => export.head = Some(h),
            ExportLine::Head(_) => return Err(ExportError::SecondHead { line: n + 1 }),
        }
    }
    Ok(export)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_in_order_and_a_bad_one_is_named() {
        let record = crate::audit::test_record(1);
        let checkpoint = AuditCheckpoint {
            tenant: None,
            seq: 1,
            hash: record.hash.clone(),
            time: 5,
            signature: "00".into(),
        };
        let mut export = Vec::new();
        serde_json::to_writer(&mut export, &ExportLine::Record(Box::new(record.clone()))).unwrap();
        export.extend_from_slice(b"\n   \n");
        serde_json::to_writer(&mut export, &ExportLine::Checkpoint(checkpoint.clone())).unwrap();
        export.push(b'\n');
        serde_json::to_writer(&mut export, &ExportLine::Head(checkpoint.clone())).unwrap();
        export.push(b'\n');
        let read = read_export(&export[..]).unwrap();
        assert_eq!(read.records, vec![record]);
        assert_eq!(read.checkpoints, vec![checkpoint.clone()]);
        assert_eq!(read.head, Some(checkpoint.clone()));

        let mut twice = export.clone();
        serde_json::to_writer(&mut twice, &ExportLine::Head(checkpoint)).unwrap();
        let e = read_export(&twice[..]).unwrap_err();
        assert!(matches!(e, ExportError::SecondHead { line: 5 }), "{e}");

        export.extend_from_slice(b"{\"type\":\"note\"}\n");
        let e = read_export(&export[..]).unwrap_err();
        assert!(matches!(e, ExportError::Line { line: 5, .. }), "{e}");
    }
}
