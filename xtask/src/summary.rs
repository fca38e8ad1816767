//! Adds up libtest's `test result:` lines, and what a binary that never
//! printed one (killed at its time limit, crashed) got through.

use std::fmt;

/// Totals over every `test result:` line of a cargo test run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TestCounts {
    /// How many test binaries (including doctest runs) reported.
    pub binaries: usize,
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
    /// Binaries that announced their tests but printed no `test result:`
    /// line; their finished tests are counted above from `test ... ok` lines.
    pub unfinished_binaries: usize,
    /// Tests of those binaries that never reported.
    pub unfinished: usize,
}

/// One binary's `running N tests` and the results it printed so far.
struct Open {
    announced: usize,
    passed: usize,
    failed: usize,
    ignored: usize,
}

impl TestCounts {
    pub fn parse(output: &str) -> TestCounts {
        let mut c = TestCounts::default();
        let mut open: Option<Open> = None;
        for line in output.lines() {
            let line = line.trim();
            if let Some(n) = line
                .strip_prefix("running ")
                .and_then(|r| r.strip_suffix(" tests").or_else(|| r.strip_suffix(" test")))
                .and_then(|n| n.parse::<usize>().ok())
            {
                c.close(open.take());
                open = Some(Open {
                    announced: n,
                    passed: 0,
                    failed: 0,
                    ignored: 0,
                });
                continue;
            }
            if let Some(o) = open.as_mut().filter(|_| line.starts_with("test ")) {
                if line.ends_with(" ... ok") {
                    o.passed += 1;
                } else if line.ends_with(" ... FAILED") {
                    o.failed += 1;
                } else if line.ends_with(" ... ignored") || line.contains(" ... ignored, ") {
                    o.ignored += 1;
                }
            }
            let Some(rest) = line.strip_prefix("test result: ") else {
                continue;
            };
            open = None;
            c.binaries += 1;
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(label), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(n) = n.parse::<usize>() else { continue };
                match label {
                    "passed" => c.passed += n,
                    "failed" => c.failed += n,
                    "ignored" => c.ignored += n,
                    _ => {}
                }
            }
        }
        c.close(open);
        c
    }

    /// Counts a binary that stopped without its `test result:` line.
    fn close(&mut self, open: Option<Open>) {
        let Some(o) = open else { return };
        self.unfinished_binaries += 1;
        self.passed += o.passed;
        self.failed += o.failed;
        self.ignored += o.ignored;
        self.unfinished += o.announced.saturating_sub(o.passed + o.failed + o.ignored);
    }
}

impl fmt::Display for TestCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} binaries: {} passed, {} failed, {} ignored",
            self.binaries, self.passed, self.failed, self.ignored
        )?;
        if self.unfinished_binaries > 0 {
            write!(
                f,
                "; {} binaries stopped early, {} of their tests never reported",
                self.unfinished_binaries, self.unfinished
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_up_every_result_line() {
        let out = "\
running 2 tests
test a ... ok
test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.20s
";
        let c = TestCounts::parse(out);
        assert_eq!(
            c,
            TestCounts {
                binaries: 2,
                passed: 5,
                failed: 1,
                ignored: 1,
                ..TestCounts::default()
            }
        );
    }

    #[test]
    fn a_binary_killed_at_its_time_limit_counts_what_it_reported() {
        let out = "\
running 1 test
test only ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s

running 6 tests
test connect_after_client ... ok
test connect_before_client ... ok
test writable_after_register ... FAILED
test connect_twice has been running for over 60 seconds

xtask: TIMEOUT: smoke.exe ran longer than 120 s under Wine and was killed
";
        let c = TestCounts::parse(out);
        assert_eq!(
            c,
            TestCounts {
                binaries: 1,
                passed: 3,
                failed: 1,
                ignored: 0,
                unfinished_binaries: 1,
                unfinished: 3,
            }
        );
        assert_eq!(
            c.to_string(),
            "1 binaries: 3 passed, 1 failed, 0 ignored; \
             1 binaries stopped early, 3 of their tests never reported"
        );
    }

    #[test]
    fn no_result_line_counts_nothing() {
        assert_eq!(
            TestCounts::parse("error: could not compile\n"),
            TestCounts::default()
        );
    }
}
