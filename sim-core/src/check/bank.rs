//! Jepsen's bank checker (`jepsen.tests.bank/checker`): a history of transfers between
//! accounts and reads of every balance is valid when every read that succeeded names
//! every account, with an integer balance for each, none negative, adding up to the
//! total. The total is given, or is what the first read to complete adds up to. Reads
//! are all a bank history's consistency rests on: transfers are not replayed (their
//! amounts are not checked against the reads), as Jepsen does.
//!
//! This module reads operations; it never drives a run.

use std::collections::BTreeSet;

use serde_json::Value;

use super::history::{transfer, Operation};
use super::OpFunction;

/// Problems reported for one history at most.
pub const ERRORS_MAX: usize = 100;

/// One read that breaks the bank's rules.
#[derive(Clone, Debug, PartialEq)]
pub struct BankError {
    /// 1-based line of the read's invocation.
    pub line: u32,
    pub process: u64,
    /// Jepsen's error types: `wrong-total`, `negative-value`, `nil-balance`,
    /// `unexpected-key`, plus `missing-key` (DESIGN: every read names every account).
    pub kind: &'static str,
    pub message: String,
    pub read: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BankReport {
    pub reads: usize,
    pub transfers: usize,
    pub accounts: Vec<String>,
    /// The total every read must add up to (none when no read succeeded).
    pub total: Option<i128>,
    pub errors: Vec<BankError>,
    /// Errors found beyond `ERRORS_MAX`.
    pub more_errors: usize,
}

impl BankReport {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A history the bank model cannot read, located at an operation's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub line: u32,
    pub message: String,
}

/// Checks a bank history; `total` overrides the first read's sum.
pub fn check(operations: &[Operation], total: Option<i128>) -> Result<BankReport, Malformed> {
    let mut accounts = BTreeSet::new();
    let mut reads = Vec::new();
    let mut transfers = 0;
    for op in operations {
        match op.f {
            OpFunction::Transfer => {
                let (from, to, _) = transfer(&op.input).map_err(|message| Malformed {
                    line: op.line,
                    message,
                })?;
                accounts.insert(from);
                accounts.insert(to);
                transfers += 1;
            }
            OpFunction::Read => {
                let Some(output) = op.output.as_ref().filter(|_| op.completed) else {
                    continue;
                };
                let Value::Object(balances) = output else {
                    return Err(Malformed {
                        line: op.line,
                        message: format!(
                            "a bank read returns an object of balances \
                             ({{\"a0\": 10, ...}}), not {output}"
                        ),
                    });
                };
                accounts.extend(balances.keys().cloned());
                reads.push(op);
            }
            other => {
                return Err(Malformed {
                    line: op.line,
                    message: format!(
                        "a bank history has transfers and reads, not `{}`",
                        format!("{other:?}").to_lowercase()
                    ),
                })
            }
        }
    }
    // The first read to complete fixes the total when none is given.
    reads.sort_by_key(|op| (op.return_time, op.line));
    let sum_of = |op: &Operation| -> Option<i128> {
        let balances = op.output.as_ref()?.as_object()?;
        balances.values().map(|v| v.as_i64().map(i128::from)).sum()
    };
    let total = total.or_else(|| reads.first().and_then(|op| sum_of(op)));
    let mut report = BankReport {
        reads: reads.len(),
        transfers,
        accounts: accounts.iter().cloned().collect(),
        total,
        errors: Vec::new(),
        more_errors: 0,
    };
    reads.sort_by_key(|op| op.line);
    for op in reads {
        if let Some(error) = check_read(op, &accounts, total) {
            if report.errors.len() < ERRORS_MAX {
                report.errors.push(error);
            } else {
                report.more_errors += 1;
            }
        }
    }
    Ok(report)
}

/// The first rule `op` breaks, in Jepsen's order.
fn check_read(
    op: &Operation,
    accounts: &BTreeSet<String>,
    total: Option<i128>,
) -> Option<BankError> {
    let read = op.output.clone().expect("only completed reads are checked");
    let balances = read.as_object().expect("checked to be an object");
    let error = |kind: &'static str, message: String| BankError {
        line: op.line,
        process: op.process,
        kind,
        message,
        read: read.clone(),
    };
    if let Some(missing) = accounts.iter().find(|a| !balances.contains_key(*a)) {
        return Some(error(
            "missing-key",
            format!("does not name account `{missing}`"),
        ));
    }
    if let Some((name, value)) = balances.iter().find(|(_, v)| v.as_i64().is_none()) {
        let kind = if value.is_null() {
            "nil-balance"
        } else {
            "unexpected-key"
        };
        return Some(error(
            kind,
            format!("account `{name}` has {value}, not an integer balance"),
        ));
    }
    let sum: i128 = balances
        .values()
        .filter_map(Value::as_i64)
        .map(i128::from)
        .sum();
    if let Some(total) = total.filter(|t| *t != sum) {
        return Some(error(
            "wrong-total",
            format!("the balances add up to {sum}, not {total}"),
        ));
    }
    if let Some((name, value)) = balances
        .iter()
        .find(|(_, v)| v.as_i64().is_some_and(|b| b < 0))
    {
        return Some(error(
            "negative-value",
            format!("account `{name}` is negative: {value}"),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history::parse;

    fn lines(lines: &[&str]) -> String {
        lines.join("\n")
    }

    fn transfer_line(process: u32, kind: &str) -> String {
        format!(
            r#"{{"process":{process},"type":"{kind}","f":"transfer","value":{{"from":"a0","to":"a1","amount":5}}}}"#
        )
    }

    fn read_lines(process: u32, balances: &str) -> [String; 2] {
        [
            format!(r#"{{"process":{process},"type":"invoke","f":"read","value":null}}"#),
            format!(r#"{{"process":{process},"type":"ok","f":"read","value":{balances}}}"#),
        ]
    }

    fn history(reads: &[&str]) -> String {
        let mut all = vec![transfer_line(0, "invoke"), transfer_line(0, "ok")];
        for (process, balances) in reads.iter().enumerate() {
            all.extend(read_lines(process as u32 + 1, balances));
        }
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        lines(&refs)
    }

    fn check_text(text: &str, total: Option<i128>) -> BankReport {
        check(&parse(text).expect("well formed"), total).expect("a bank history")
    }

    #[test]
    fn reads_that_add_up_are_valid() {
        let report = check_text(
            &history(&[r#"{"a0":10,"a1":10}"#, r#"{"a0":5,"a1":15}"#]),
            None,
        );
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.total, Some(20));
        assert_eq!((report.reads, report.transfers), (2, 1));
        assert_eq!(report.accounts, ["a0", "a1"]);
    }

    #[test]
    fn each_broken_rule_is_named_with_its_line() {
        let report = check_text(
            &history(&[
                r#"{"a0":10,"a1":10}"#,
                r#"{"a0":5,"a1":16}"#,
                r#"{"a0":25,"a1":-5}"#,
                r#"{"a0":20}"#,
                r#"{"a0":null,"a1":20}"#,
            ]),
            None,
        );
        let kinds: Vec<(u32, &str)> = report.errors.iter().map(|e| (e.line, e.kind)).collect();
        assert_eq!(
            kinds,
            [
                (5, "wrong-total"),
                (7, "negative-value"),
                (9, "missing-key"),
                (11, "nil-balance")
            ]
        );
        assert!(report.errors[0].message.contains("21, not 20"));
    }

    /// Another system's bank history: its own account names, timestamps, transfers that
    /// failed or whose outcome is unknown.
    #[test]
    fn histories_of_other_systems_are_read_by_their_own_accounts() {
        let text = lines(&[
            r#"{"process":7,"type":"invoke","f":"transfer","value":{"from":"alice","to":"bob","amount":3},"time":100}"#,
            r#"{"process":7,"type":"fail","f":"transfer","value":{"from":"alice","to":"bob","amount":3},"time":150}"#,
            r#"{"process":8,"type":"invoke","f":"transfer","value":{"from":"bob","to":"carol","amount":2},"time":160}"#,
            r#"{"process":9,"type":"invoke","f":"read","value":null,"time":170}"#,
            r#"{"process":9,"type":"ok","f":"read","value":{"alice":50,"bob":48,"carol":2},"time":190}"#,
            r#"{"process":8,"type":"info","f":"transfer","value":{"from":"bob","to":"carol","amount":2},"time":200}"#,
            r#"{"process":9,"type":"invoke","f":"read","value":null,"time":210}"#,
            r#"{"process":9,"type":"ok","f":"read","value":{"alice":50,"bob":51,"carol":0},"time":230}"#,
        ]);
        let report = check_text(&text, None);
        assert_eq!(report.accounts, ["alice", "bob", "carol"]);
        assert_eq!(report.total, Some(100));
        assert_eq!((report.reads, report.transfers), (2, 1));
        assert_eq!(report.errors.len(), 1, "{report:?}");
        assert_eq!(report.errors[0].line, 7);
        assert_eq!(report.errors[0].kind, "wrong-total");
    }

    #[test]
    fn a_given_total_overrides_the_first_read() {
        let report = check_text(&history(&[r#"{"a0":10,"a1":10}"#]), Some(30));
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].kind, "wrong-total");
    }

    #[test]
    fn other_operations_and_odd_reads_are_located_errors() {
        let write = r#"{"process":0,"type":"invoke","f":"write","value":1}"#;
        let ops = parse(write).unwrap();
        let error = check(&ops, None).unwrap_err();
        assert_eq!(error.line, 1);
        assert!(error.message.contains("not `write`"), "{}", error.message);
        let text = lines(&[
            r#"{"process":0,"type":"invoke","f":"read","value":null}"#,
            r#"{"process":0,"type":"ok","f":"read","value":7}"#,
        ]);
        let error = check(&parse(&text).unwrap(), None).unwrap_err();
        assert!(
            error.message.contains("object of balances"),
            "{}",
            error.message
        );
        let bad = r#"{"process":0,"type":"invoke","f":"transfer","value":{"from":"a0"}}"#;
        let errors = parse(bad).unwrap_err();
        assert_eq!((errors[0].line, errors[0].column), (1, 45));
        assert!(
            errors[0].message.contains("\"amount\""),
            "{}",
            errors[0].message
        );
    }
}
