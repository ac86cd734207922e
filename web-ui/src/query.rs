//! The page's URL query: which built-in scenario to run, at which seed, with which planted
//! bugs and injected faults, and which event to show.
//!
//! `?scenario=NAME&seed=N&bug=NAME&fault=crash:3@1.2s&event=K`; all optional, `bug` and
//! `fault` repeatable (faults in `ScheduledFault::parse_spec` syntax, the CLI's
//! `--fault`). `toml=TEXT` carries a whole scenario file instead of a built-in's name
//! (what `faultline shrink` prints, and the address of a pasted scenario). Unknown keys are ignored, so later additions do not break older links. Bad
//! values are error text for the page, never a panic: a URL is user input. `to_query`
//! writes a request back, so the page's address always replays what it shows.
//!
//! `diff=QUERY` (a whole query, escaped) opens a second run beside this one to compare.
//! `panic_step=N&panic=TEXT` says that engine step N panics with TEXT: wasm cannot catch
//! a panic, so when a node panics the page reloads itself with them and stops before
//! that step (`Run::panic_next_step`), ending with the CLI's `panic` finding.

use sim_core::fault::ScheduledFault;

/// Room for a scenario file in `toml=` (a shrunk one is 1-3 KB escaped); bounds the
/// parsing work.
pub const QUERY_BYTES_MAX: usize = 32 * 1024;
/// Injected faults one URL may carry.
pub const FAULTS_MAX: usize = 64;

/// What the URL asks for; `None` means "the default".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub scenario: Option<String>,
    /// A scenario file's text, instead of a built-in's name.
    pub toml: Option<String>,
    pub seed: Option<u64>,
    pub bugs: Vec<String>,
    pub faults: Vec<ScheduledFault>,
    /// The trace event to open the run at (a finding's), instead of its end.
    pub event: Option<u64>,
    /// The engine step that panics, and its message.
    pub panic: Option<(u64, String)>,
    /// A second run to compare this one with, side by side (`diff=` holding its query).
    pub diff: Option<Box<Request>>,
}

/// The longest panic message an address carries (longer ones are cut).
pub const PANIC_MESSAGE_MAX: usize = 2_000;

/// Parses `location.search` (with or without its leading `?`).
pub fn parse_query(search: &str) -> Result<Request, String> {
    if search.len() > QUERY_BYTES_MAX {
        return Err(format!("the URL query is over {QUERY_BYTES_MAX} bytes"));
    }
    let mut request = Request::default();
    let (mut panic_step, mut panic_message) = (None, None);
    let query = search.strip_prefix('?').unwrap_or(search);
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(raw)?;
        match key {
            "scenario" => {
                if value.is_empty() {
                    return Err("`scenario=` needs a name, e.g. `?scenario=ping-pong`".into());
                }
                request.scenario = Some(value);
            }
            "toml" => {
                if value.trim().is_empty() {
                    return Err("`toml=` needs a scenario file's text".into());
                }
                request.toml = Some(value);
            }
            "seed" => request.seed = Some(parse_seed(&value)?),
            "bug" => request.bugs.push(value),
            "fault" => {
                if request.faults.len() >= FAULTS_MAX {
                    return Err(format!("more than {FAULTS_MAX} injected faults in the URL"));
                }
                request.faults.push(ScheduledFault::parse_spec(&value)?);
            }
            "event" => {
                let event = value.parse::<u64>().map_err(|_| {
                    format!("bad event `{value}` in the URL: expected an event number")
                })?;
                request.event = Some(event);
            }
            "panic_step" => {
                let step = value.parse::<u64>().map_err(|_| {
                    format!("bad panic_step `{value}` in the URL: expected a step number")
                })?;
                panic_step = Some(step);
            }
            "panic" => panic_message = Some(value),
            "diff" => {
                let other = parse_query(&value)
                    .map_err(|error| format!("in the compared run (`diff=`): {error}"))?;
                if other.diff.is_some() {
                    return Err("a compared run (`diff=`) cannot compare again".into());
                }
                request.diff = Some(Box::new(other));
            }
            _ => {}
        }
    }
    request.panic = match (panic_step, panic_message) {
        (Some(step), Some(message)) if message.len() <= PANIC_MESSAGE_MAX => Some((step, message)),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(format!("`panic=` is over {PANIC_MESSAGE_MAX} bytes"));
        }
        _ => return Err("`panic_step=` and `panic=` go together".into()),
    };
    Ok(request)
}

/// The query that asks for `request` again (with a leading `?`).
pub fn to_query(request: &Request) -> String {
    let mut pairs = Vec::new();
    if let Some(text) = &request.toml {
        pairs.push(format!("toml={}", percent_encode(text)));
    } else if let Some(name) = &request.scenario {
        pairs.push(format!("scenario={}", percent_encode(name)));
    }
    if let Some(seed) = request.seed {
        pairs.push(format!("seed={seed}"));
    }
    for bug in &request.bugs {
        pairs.push(format!("bug={}", percent_encode(bug)));
    }
    for spec in request.faults.iter().map(ScheduledFault::spec) {
        pairs.push(format!("fault={}", percent_encode(&spec)));
    }
    if let Some(event) = request.event {
        pairs.push(format!("event={event}"));
    }
    if let Some((step, message)) = &request.panic {
        pairs.push(format!("panic_step={step}"));
        pairs.push(format!("panic={}", percent_encode(message)));
    }
    if let Some(other) = &request.diff {
        pairs.push(format!("diff={}", percent_encode(&to_query(other))));
    }
    format!("?{}", pairs.join("&"))
}

/// Escapes what a query value cannot hold as is; keeps fault specs readable.
fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        let plain = byte.is_ascii_alphanumeric() || b"-._~:@,/".contains(&byte);
        if plain {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn parse_seed(value: &str) -> Result<u64, String> {
    let digits = !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit());
    match value.parse::<u64>() {
        Ok(seed) if digits => Ok(seed),
        _ => Err(format!(
            "bad seed `{value}` in the URL: expected a whole number 0..=2^64-1"
        )),
    }
}

/// Decodes `%XX` escapes and `+` (a space in form encoding).
fn percent_decode(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = bytes.get(index + 1..index + 3).and_then(|pair| {
                    std::str::from_utf8(pair)
                        .ok()
                        .and_then(|s| u8::from_str_radix(s, 16).ok())
                });
                let byte = hex.ok_or_else(|| format!("bad `%` escape in the URL: `{raw}`"))?;
                decoded.push(byte);
                index += 3;
            }
            b'+' => {
                decoded.push(b' ');
                index += 1;
            }
            byte => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded).map_err(|_| format!("the URL value `{raw}` is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_query_asks_for_the_defaults() {
        assert_eq!(parse_query(""), Ok(Request::default()));
        assert_eq!(parse_query("?"), Ok(Request::default()));
    }

    #[test]
    fn scenario_and_seed_are_read_and_other_keys_ignored() {
        let request = parse_query("?scenario=ping-pong&seed=42&zoom=later").unwrap();
        assert_eq!(request.scenario.as_deref(), Some("ping-pong"));
        assert_eq!(request.seed, Some(42));
    }

    #[test]
    fn bugs_faults_and_the_event_are_read_and_written_back() {
        let query = "?scenario=registry-tour&seed=7&bug=zab.ack-before-persist\
                     &fault=crash:2@1.2s&fault=partition:0,3/1@2s&event=42";
        let request = parse_query(query).unwrap();
        assert_eq!(request.bugs, ["zab.ack-before-persist"]);
        assert_eq!(request.faults.len(), 2);
        assert_eq!(request.faults[0].at_ns, 1_200_000_000);
        assert_eq!(request.event, Some(42));
        assert_eq!(to_query(&request), query);
        assert_eq!(parse_query(&to_query(&request)).unwrap(), request);
    }

    #[test]
    fn a_panic_step_and_its_message_round_trip_and_go_together() {
        let request = Request {
            scenario: Some("ping-pong-lossy".into()),
            panic: Some((41, "pong 0 is not for round 1 & more".into())),
            ..Request::default()
        };
        assert_eq!(parse_query(&to_query(&request)), Ok(request));
        let error = parse_query("?panic_step=3").unwrap_err();
        assert!(error.contains("go together"), "{error}");
        let error = parse_query("?panic_step=x&panic=y").unwrap_err();
        assert!(error.contains("bad panic_step"), "{error}");
        let long = format!("?panic_step=1&panic={}", "a".repeat(PANIC_MESSAGE_MAX + 1));
        assert!(parse_query(&long).unwrap_err().contains("over"));
    }

    #[test]
    fn a_compared_run_round_trips_and_cannot_nest() {
        let other = Request {
            scenario: Some("registry-basic".into()),
            seed: Some(2),
            bugs: vec!["zab.vote-ignores-epoch".into()],
            ..Request::default()
        };
        let request = Request {
            scenario: Some("registry-basic".into()),
            seed: Some(1),
            diff: Some(Box::new(other)),
            ..Request::default()
        };
        let query = to_query(&request);
        assert!(query.contains("&diff=%3Fscenario"), "{query}");
        assert_eq!(parse_query(&query), Ok(request.clone()));
        let nested = Request {
            diff: Some(Box::new(request)),
            ..Request::default()
        };
        let error = parse_query(&to_query(&nested)).unwrap_err();
        assert!(error.contains("cannot compare again"), "{error}");
        let error = parse_query("?diff=%3Fseed%3Dx").unwrap_err();
        assert!(
            error.contains("compared run") && error.contains("bad seed"),
            "{error}"
        );
    }

    #[test]
    fn bad_faults_and_events_are_errors() {
        assert!(parse_query("?fault=crash:1")
            .unwrap_err()
            .contains("no `@TIME`"));
        assert!(parse_query("?event=x").unwrap_err().contains("bad event"));
        let many = "&fault=heal@1s".repeat(FAULTS_MAX + 1);
        assert!(parse_query(&many).unwrap_err().contains("more than"));
    }

    #[test]
    fn escapes_are_decoded() {
        let request = parse_query("scenario=ping%2Dpong").unwrap();
        assert_eq!(request.scenario.as_deref(), Some("ping-pong"));
    }

    #[test]
    fn bad_seeds_are_errors_not_panics() {
        for bad in [
            "?seed=abc",
            "?seed=",
            "?seed=-1",
            "?seed=+1",
            "?seed=18446744073709551616",
        ] {
            let error = parse_query(bad).unwrap_err();
            assert!(error.contains("bad seed"), "{bad}: {error}");
        }
        assert_eq!(
            parse_query("?seed=18446744073709551615").unwrap().seed,
            Some(u64::MAX)
        );
    }

    #[test]
    fn bad_escapes_empty_names_and_huge_queries_are_errors() {
        assert!(parse_query("?scenario=%zz").is_err());
        assert!(parse_query("?scenario=%e2%28").is_err());
        assert!(parse_query("?scenario=").is_err());
        assert!(parse_query(&"a".repeat(QUERY_BYTES_MAX + 1)).is_err());
    }
}
