//! Marks in a wineserver request trace, shared by both benchmark binaries.

use std::fs::OpenOptions;

/// The prefix of the pipe names that mark a workload in a wineserver trace.
/// Opening `\\.\pipe\bench-mark@PEER@WORKLOAD@UNITS` (a name no one
/// serves) is one `open_file_object` request naming it, which
/// `cargo xtask bench` finds in the trace; `@end` closes the section.
/// UNITS is the number of units of work (MiB, round trips, connections) the
/// requests of the section are divided by.
pub const MARK: &str = r"\\.\pipe\bench-mark@";

/// Marks the start of `work` of `peer` in a request trace (see [`MARK`]).
pub fn mark(peer: &str, work: &str, units: usize) {
    touch(&format!("{MARK}{peer}@{work}@{units}"));
}

/// Marks the end of the workload marked last.
pub fn mark_end() {
    touch(&format!("{MARK}end"));
}

fn touch(name: &str) {
    match OpenOptions::new().read(true).open(name) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => eprintln!("trace mark {name}: {e}"),
        Ok(_) => eprintln!("trace mark {name}: unexpectedly exists"),
    }
}
