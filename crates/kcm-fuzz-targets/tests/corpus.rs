//! Replays every committed fuzz input on the stable toolchain: each file of
//! `fuzz/corpus/<target>/` (the seeds and what the fuzzers kept, minimised) and of
//! `fuzz/regressions/<target>/` (inputs that once crashed a target) goes through the
//! same function the cargo-fuzz target calls. A regression is a panic here.

use std::path::{Path, PathBuf};

use kcm_fuzz_targets::TARGETS;

/// The most files and bytes a target's committed corpus may hold.
const MAX_FILES: usize = 200;
const MAX_BYTES: u64 = 1 << 20;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_committed_input_runs_clean() {
    for target in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(target.name));
        assert!(!corpus.is_empty(), "{}: no corpus committed", target.name);
        assert!(
            corpus.len() <= MAX_FILES,
            "{}: {} corpus files, more than {MAX_FILES}: minimise it (scripts/fuzz --cmin)",
            target.name,
            corpus.len()
        );
        let bytes: u64 = corpus
            .iter()
            .map(|p| p.metadata().expect("metadata").len())
            .sum();
        assert!(
            bytes <= MAX_BYTES,
            "{}: {bytes} bytes of corpus, more than {MAX_BYTES}",
            target.name
        );
        let regressions = files(&fuzz_dir().join("regressions").join(target.name));
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).expect("a corpus file");
            let outcome = std::panic::catch_unwind(|| (target.run)(&data));
            assert!(
                outcome.is_ok(),
                "{}: {} panics",
                target.name,
                path.display()
            );
        }
    }
}

#[test]
fn every_target_has_a_cargo_fuzz_target() {
    let mut declared: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_owned))
        .collect();
    declared.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    listed.sort();
    assert_eq!(declared, listed);
}

#[test]
fn scripts_fuzz_runs_every_target_with_its_max_len() {
    let script = std::fs::read_to_string(fuzz_dir().join("../scripts/fuzz")).expect("scripts/fuzz");
    for target in TARGETS {
        let entry = format!("[{}]={}\n", target.name, target.max_len);
        assert!(
            script.contains(&entry),
            "scripts/fuzz has no `{}`",
            entry.trim()
        );
    }
    let order: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert!(
        script.contains(&format!("ALL=({})", order.join(" "))),
        "scripts/fuzz's ALL must list {order:?}"
    );
}
