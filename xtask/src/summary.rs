//! Adds up libtest's `test result:` lines.

use std::fmt;

/// Totals over every `test result:` line of a cargo test run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TestCounts {
    /// How many test binaries (including doctest runs) reported.
    pub binaries: usize,
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
}

impl TestCounts {
    pub fn parse(output: &str) -> TestCounts {
        let mut c = TestCounts::default();
        for line in output.lines() {
            let Some(rest) = line.trim().strip_prefix("test result: ") else {
                continue;
            };
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
        c
    }
}

impl fmt::Display for TestCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} binaries: {} passed, {} failed, {} ignored",
            self.binaries, self.passed, self.failed, self.ignored
        )
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
                ignored: 1
            }
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
