//! Reading history files (DESIGN.md, History files) into operations, with every problem
//! located as file:line:column, and pairing invocations with their completions. Files are
//! read a line at a time (`parse_reader`), so memory holds operations, never the text.

use serde_json::Value;

use super::{OpFunction, OpType};

/// The most lines one history file may hold.
pub const HISTORY_LINES_MAX: usize = 10_000_000;

/// One operation: an invocation and what became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    pub process: u64,
    pub f: OpFunction,
    pub key: Option<String>,
    /// The invocation's value (write: the value; cas: [expected, new]; append: the suffix).
    pub input: Value,
    /// What an `ok` read returned; `None` for an operation whose outcome is unknown.
    pub output: Option<Value>,
    /// Whether it completed `ok`; `false` means `info` (unknown: may take effect at any
    /// point after its invocation, or never). `fail` operations are dropped on reading.
    pub completed: bool,
    pub invoke_time: u64,
    /// `u64::MAX` for an operation that never completed.
    pub return_time: u64,
    /// 1-based line of the invocation, for reports.
    pub line: u32,
}

/// A located problem in a history file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// Problems reported for one history at most; a last one says the list stopped.
pub const HISTORY_ERRORS_MAX: usize = 100;

/// Parses a whole history; on problems, returns them all (up to a bound).
pub fn parse(text: &str) -> Result<Vec<Operation>, Vec<HistoryError>> {
    parse_reader(text.as_bytes())
}

/// Parses a history line by line from `reader`: memory holds the operations read so
/// far and one line, never the file. A line that is not UTF-8 or cannot be read is a
/// located error.
pub fn parse_reader(
    mut reader: impl std::io::BufRead,
) -> Result<Vec<Operation>, Vec<HistoryError>> {
    let mut errors = Vec::new();
    let mut pairer = Pairer::default();
    let mut bytes = Vec::new();
    let mut seen_content = false;
    let mut index: usize = 0;
    loop {
        bytes.clear();
        match reader.read_until(b'\n', &mut bytes) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                errors.push(error(index as u32 + 1, 1, format!("cannot read: {e}")));
                break;
            }
        }
        if index >= HISTORY_LINES_MAX {
            errors.push(error(
                index as u32 + 1,
                1,
                format!("more than {HISTORY_LINES_MAX} lines"),
            ));
            break;
        }
        let number = index as u32 + 1;
        index += 1;
        let line = match std::str::from_utf8(&bytes) {
            Ok(line) => line.trim_end_matches(['\n', '\r']),
            Err(e) => {
                let column = e.valid_up_to() as u32 + 1;
                errors.push(error(number, column, "not UTF-8 text".to_string()));
                if errors.len() >= HISTORY_ERRORS_MAX {
                    break;
                }
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        if !seen_content {
            seen_content = true;
            // The wrong kind of file says so once, rather than one error per line.
            if let Some(problem) = wrong_kind(line) {
                return Err(vec![error(number, 1, problem)]);
            }
        }
        match parse_line(line) {
            // After a malformed line only the other malformed lines are worth reporting.
            Ok(event) if errors.is_empty() => pairer.event(number, event),
            Ok(_) => {}
            Err((column, message)) => errors.push(error(number, column, message)),
        }
        if errors.len() >= HISTORY_ERRORS_MAX {
            errors.push(error(
                number,
                1,
                format!("stopped after {HISTORY_ERRORS_MAX} problems; fix these first"),
            ));
            break;
        }
    }
    if !seen_content && errors.is_empty() {
        return Err(vec![error(
            1,
            1,
            "empty history: no operations (one JSON object per line, an invoke and its \
             completion per operation)"
                .to_string(),
        )]);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    pairer.finish()
}

/// Why the first line says this is not a history (a trace), if it does.
fn wrong_kind(first_line: &str) -> Option<String> {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(first_line) else {
        return None;
    };
    let trace_like = ["index", "time_ns", "kind", "node"]
        .iter()
        .all(|k| object.contains_key(*k))
        || object.contains_key("faultline_trace");
    (trace_like && !object.contains_key("process")).then(|| {
        "this is a trace (`faultline run --trace`), not a history: write the history with \
         `--history FILE`"
            .to_string()
    })
}

/// Pairs a run's own history events (as `Ctx::history` recorded them) into operations;
/// "line" numbers are 1-based event indices.
pub fn from_events(events: &[super::HistoryEvent]) -> Result<Vec<Operation>, Vec<HistoryError>> {
    let events = events
        .iter()
        .enumerate()
        .map(|(index, e)| {
            let event = Event {
                process: e.process,
                kind: e.kind,
                f: e.f,
                key: e.key.clone(),
                value: exact_value(&e.value),
                time: e.time,
            };
            (index as u32 + 1, event)
        })
        .collect();
    pair(events)
}

/// A run's own value with exact numbers, as a history file's would be read.
fn exact_value(value: &Value) -> Value {
    if has_float(value) {
        super::number::exact(&value.to_string()).unwrap_or_else(|_| value.clone())
    } else {
        value.clone()
    }
}

/// Whether `value` holds a number serde_json keeps as a float (a fraction, an exponent,
/// `-0`, or an integer beyond 64 bits): only those need reading again.
fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(number) => number.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

fn error(line: u32, column: u32, message: String) -> HistoryError {
    HistoryError {
        line,
        column,
        message,
    }
}

struct Event {
    process: u64,
    kind: OpType,
    f: OpFunction,
    key: Option<String>,
    value: Value,
    time: Option<u64>,
}

fn parse_line(line: &str) -> Result<Event, (u32, String)> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| (e.column() as u32, format!("not a JSON object: {e}")))?;
    let Value::Object(object) = value else {
        return Err((1, "expected a JSON object per line".into()));
    };
    let column = |key: &str| {
        line.find(&format!("\"{key}\""))
            .map(|i| i as u32 + 1)
            .unwrap_or(1)
    };
    let process = object
        .get("process")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            (
                column("process"),
                "`process` must be a non-negative integer".to_string(),
            )
        })?;
    let kind = match object.get("type").and_then(Value::as_str) {
        Some("invoke") => OpType::Invoke,
        Some("ok") => OpType::Ok,
        Some("fail") => OpType::Fail,
        Some("info") => OpType::Info,
        _ => {
            return Err((
                column("type"),
                "`type` must be \"invoke\", \"ok\", \"fail\" or \"info\"".into(),
            ))
        }
    };
    let f = match object.get("f").and_then(Value::as_str) {
        Some("read") => OpFunction::Read,
        Some("write") => OpFunction::Write,
        Some("cas") => OpFunction::Cas,
        Some("append") => OpFunction::Append,
        Some("transfer") => OpFunction::Transfer,
        _ => {
            return Err((
                column("f"),
                "`f` must be \"read\", \"write\", \"cas\", \"append\" or \"transfer\"".into(),
            ))
        }
    };
    let key = match object.get("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()),
        Some(_) => return Err((column("key"), "`key` must be a string".into())),
    };
    // The value again from its text, with exact numbers (see `number`).
    // Only a value holding a number serde_json read as a float is read again: an integer
    // it kept whole is already exact.
    let value = match object.get("value") {
        None => Value::Null,
        Some(value) if has_float(value) => {
            let exact = super::number::exact(line).map_err(|e| (column("value"), e))?;
            exact.get("value").cloned().unwrap_or(Value::Null)
        }
        Some(value) => value.clone(),
    };
    if f == OpFunction::Cas
        && kind == OpType::Invoke
        && value.as_array().is_none_or(|a| a.len() != 2)
    {
        return Err((
            column("value"),
            "a cas takes `value`: [expected, new]".into(),
        ));
    }
    if f == OpFunction::Append && kind == OpType::Invoke && !value.is_string() {
        return Err((column("value"), "an append takes a string `value`".into()));
    }
    if f == OpFunction::Transfer && kind == OpType::Invoke {
        transfer(&value).map_err(|message| (column("value"), message))?;
    }
    let time = match object.get("time") {
        None | Some(Value::Null) => None,
        Some(time) => Some(time.as_u64().ok_or((
            column("time"),
            "`time` must be a non-negative integer (ns)".to_string(),
        ))?),
    };
    Ok(Event {
        process,
        kind,
        f,
        key,
        value,
        time,
    })
}

/// A transfer's `value`: `{"from": account, "to": account, "amount": integer}`.
pub fn transfer(value: &Value) -> Result<(String, String, i64), String> {
    let expected = "a transfer takes `value`: {\"from\": \"a1\", \"to\": \"a2\", \"amount\": 5}";
    let Value::Object(fields) = value else {
        return Err(expected.into());
    };
    let name = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_string);
    match (
        name("from"),
        name("to"),
        fields.get("amount").and_then(Value::as_i64),
    ) {
        (Some(from), Some(to), Some(amount)) => Ok((from, to, amount)),
        _ => Err(expected.into()),
    }
}

/// Pairs each invocation with its process's next completion.
fn pair(events: Vec<(u32, Event)>) -> Result<Vec<Operation>, Vec<HistoryError>> {
    let mut pairer = Pairer::default();
    for (line, event) in events {
        pairer.event(line, event);
    }
    pairer.finish()
}

/// Pairs events one at a time, in the file's order, and keeps the first problem.
#[derive(Default)]
struct Pairer {
    pairing: Pairing,
    /// Whether the first event carried `time`, and its line.
    timed: Option<(bool, u32)>,
    /// Each process's latest time: a process's own events must keep their order.
    last_time: std::collections::BTreeMap<u64, u64>,
    events: u64,
    problem: Option<HistoryError>,
}

impl Pairer {
    fn event(&mut self, line: u32, event: Event) {
        if self.problem.is_some() {
            return;
        }
        let index = self.events;
        self.events += 1;
        let (timed, first_line) = *self.timed.get_or_insert((event.time.is_some(), line));
        if timed != event.time.is_some() {
            // Reported where time is missing: this line, or the first one.
            let at = if timed { line } else { first_line };
            let message = "`time` is on some lines but not this one; give it on all or none";
            self.problem = Some(error(at, 1, message.into()));
            return;
        }
        // `time` defines real-time order, whatever the lines' order (DESIGN); only each
        // process's own events must come in its order.
        let time = event.time.unwrap_or(index);
        let last = self.last_time.entry(event.process).or_insert(0);
        if time < *last {
            let message = format!(
                "`time` {time} goes back before {}, process {}'s previous event",
                *last, event.process
            );
            self.problem = Some(error(line, 1, message));
            return;
        }
        *last = time;
        let paired = match event.kind {
            OpType::Invoke => self.pairing.invoke(line, event, time),
            _ => self.pairing.complete(event, time),
        };
        if let Err(message) = paired {
            self.problem = Some(error(line, 1, message));
        }
    }

    fn finish(self) -> Result<Vec<Operation>, Vec<HistoryError>> {
        match self.problem {
            Some(problem) => Err(vec![problem]),
            None => Ok(self.pairing.finish()),
        }
    }
}

/// Operations in invocation order, the open one of each process, and the failed ones.
#[derive(Default)]
struct Pairing {
    operations: Vec<Operation>,
    open: std::collections::BTreeMap<u64, usize>,
    failed: Vec<usize>,
}

impl Pairing {
    fn invoke(&mut self, line: u32, event: Event, time: u64) -> Result<(), String> {
        if self.open.contains_key(&event.process) {
            let process = event.process;
            return Err(format!(
                "process {process} invokes again before its last operation completed"
            ));
        }
        self.open.insert(event.process, self.operations.len());
        self.operations.push(Operation {
            process: event.process,
            f: event.f,
            key: event.key,
            input: event.value,
            output: None,
            completed: false,
            invoke_time: time,
            return_time: u64::MAX,
            line,
        });
        Ok(())
    }

    fn complete(&mut self, event: Event, time: u64) -> Result<(), String> {
        let Some(at) = self.open.remove(&event.process) else {
            return Err(format!(
                "process {} completes an operation it never invoked",
                event.process
            ));
        };
        let operation = &mut self.operations[at];
        if operation.f != event.f {
            let invoked = operation.line;
            return Err(format!(
                "completion `{:?}` does not match the invocation on line {invoked}",
                event.f
            ));
        }
        if event.key.is_some() && operation.key != event.key {
            let invoked = operation.line;
            return Err(format!(
                "completion of key {:?} does not match the invocation on line {invoked}, \
                 of key {:?}",
                event.key.as_deref().unwrap_or(""),
                operation.key.as_deref().unwrap_or("(none)")
            ));
        }
        match event.kind {
            OpType::Ok => {
                operation.completed = true;
                operation.return_time = time;
                if operation.f == OpFunction::Read {
                    operation.output = Some(event.value);
                }
            }
            OpType::Fail => self.failed.push(at),
            OpType::Info | OpType::Invoke => {} // Unknown outcome: stays pending.
        }
        Ok(())
    }

    /// The operations that happened or may have: a failed one did not happen. (Failures
    /// arrive in any order, so removing them by index one by one would shift the rest.)
    fn finish(mut self) -> Vec<Operation> {
        let mut keep = vec![true; self.operations.len()];
        for at in self.failed {
            keep[at] = false;
        }
        let mut flags = keep.into_iter();
        self.operations
            .retain(|_| flags.next().expect("one flag per operation"));
        self.operations
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;

    const LINES: [&str; 4] = [
        r#"{"process":1,"type":"invoke","f":"write","value":1,"time":10}"#,
        r#"{"process":1,"type":"ok","f":"write","value":1,"time":30}"#,
        r#"{"process":2,"type":"invoke","f":"read","value":null,"time":5}"#,
        r#"{"process":2,"type":"ok","f":"read","value":1,"time":40}"#,
    ];

    /// DESIGN: `time`, when present, defines real-time order; the lines may come in any
    /// order as long as each process's own events keep theirs.
    #[test]
    fn lines_out_of_time_order_are_read_by_their_times() {
        let operations = parse(&LINES.join("\n")).expect("a valid history");
        let read = operations
            .iter()
            .find(|op| op.f == OpFunction::Read)
            .unwrap();
        assert_eq!((read.invoke_time, read.return_time), (5, 40));
        // Shuffled across processes: the same operations.
        let shuffled = [LINES[2], LINES[0], LINES[3], LINES[1]].join("\n");
        let again = parse(&shuffled).expect("a valid history");
        assert_eq!(again.len(), operations.len());
    }

    #[test]
    fn a_process_going_back_in_time_is_an_error() {
        let text = [
            r#"{"process":1,"type":"invoke","f":"write","value":1,"time":30}"#,
            r#"{"process":1,"type":"ok","f":"write","value":1,"time":10}"#,
        ]
        .join("\n");
        let errors = parse(&text).unwrap_err();
        assert_eq!(errors[0].line, 2);
        assert!(
            errors[0].message.contains("process 1's previous event"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_completion_of_another_key_is_an_error() {
        let text = [
            r#"{"process":1,"type":"invoke","f":"write","key":"x","value":"a"}"#,
            r#"{"process":1,"type":"ok","f":"write","key":"y","value":"a"}"#,
        ]
        .join("\n");
        let errors = parse(&text).unwrap_err();
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.contains("key \"y\""), "{errors:?}");
    }
}

#[cfg(test)]
mod reader_tests {
    use super::*;

    #[test]
    fn a_reader_gives_what_the_text_gives_and_locates_bad_bytes() {
        let text = concat!(
            r#"{"process":1,"type":"invoke","f":"write","value":1}"#,
            "\r\n\r\n",
            r#"{"process":1,"type":"ok","f":"write","value":1}"#,
            "\n"
        );
        let read = parse_reader(std::io::BufReader::with_capacity(7, text.as_bytes()));
        assert_eq!(read, parse(text));
        assert_eq!(read.unwrap()[0].line, 1);
        let mut bytes = text.as_bytes().to_vec();
        bytes.extend_from_slice(b"{\"process\":2,\xff}\n");
        let errors = parse_reader(&bytes[..]).unwrap_err();
        assert_eq!((errors[0].line, errors[0].column), (4, 14), "{errors:?}");
        assert!(errors[0].message.contains("not UTF-8"));
        let empty = parse_reader(&b"\n  \n"[..]).unwrap_err();
        assert!(empty[0].message.starts_with("empty history"));
    }

    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }

    #[test]
    fn a_read_error_is_an_error_not_an_empty_history() {
        let errors = parse_reader(std::io::BufReader::new(Broken)).unwrap_err();
        assert!(errors[0].message.contains("disk on fire"), "{errors:?}");
    }
}
