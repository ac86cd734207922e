//! Turns a SCENARIO argument (a built-in name or a path) into a validated scenario, and
//! writes output files whole or not at all. All I/O of the CLI's inputs lives here.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use sim_core::bugs::BugSet;
use sim_core::fault::ScheduledFault;
use sim_core::scenario::{self, Scenario};

/// A scenario and the argument that names it again in a reproduce command.
pub struct Loaded {
    pub scenario: Scenario,
    pub argument: String,
    /// The scenario text's faultline-hash64, in hex: two runs of "the same scenario"
    /// agree on it only if the file did not change in between.
    pub text_hash: String,
}

fn text_hash(text: &str) -> String {
    let mut hash = sim_core::hash::Hash64::default();
    hash.bytes(text.as_bytes());
    format!("{:016x}", hash.finish())
}

pub fn scenario(argument: Option<&str>) -> Result<Loaded> {
    let argument = argument.unwrap_or(scenario::DEFAULT_SCENARIO);
    if let Some(text) = scenario::builtin(argument) {
        let parsed = scenario::parse(&format!("{argument}.toml (built-in)"), text);
        let scenario = parsed.map_err(|errors| anyhow!("{}", render(&errors)))?;
        return Ok(Loaded {
            scenario,
            argument: argument.to_string(),
            text_hash: text_hash(text),
        });
    }
    let path = Path::new(argument);
    if !path.exists() {
        let names = scenario::builtin_names();
        if let Some(close) = sim_core::bugs::closest(argument, &names) {
            bail!("unknown scenario `{argument}`: did you mean `{close}`? (`faultline list` shows them all)");
        }
        bail!(
            "unknown scenario `{argument}`: not a built-in ({}) and no such file",
            names.join(", ")
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {argument}"))?;
    let text = String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        anyhow!("{argument}: not UTF-8 text (invalid byte at offset {offset}); a scenario is a TOML file")
    })?;
    let scenario =
        scenario::parse(argument, &text).map_err(|errors| anyhow!("{}", render(&errors)))?;
    Ok(Loaded {
        scenario,
        argument: argument.to_string(),
        text_hash: text_hash(&text),
    })
}

fn render(errors: &[scenario::ScenarioError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let count = errors.len();
    format!(
        "{count} problem{} in the scenario:\n{}",
        if count == 1 { "" } else { "s" },
        lines.join("\n")
    )
}

/// Switches on `--bug` names, checking them against the scenario's protocol.
pub fn bugs(names: &[String], scenario: &Scenario) -> Result<BugSet> {
    let mut set = BugSet::default();
    let mut problems = Vec::new();
    for name in names {
        if let Err(problem) = sim_core::catalogue::enable_bug(&mut set, name) {
            problems.push(problem);
        }
    }
    let options = scenario::RunOptions {
        bugs: set.clone(),
        ..Default::default()
    };
    if let Err(more) = scenario.check_options(&options) {
        problems.extend(more);
    }
    if problems.is_empty() {
        Ok(set)
    } else {
        bail!("{}", problems.join("\n"))
    }
}

/// Checks, before a run, that `path` can be written: its folder exists, and it is not a
/// folder itself. A run's findings must never be lost to an output path found bad after.
pub fn check_output(flag: &str, path: &Path) -> Result<()> {
    if path.file_name().is_none() || path.is_dir() {
        bail!("{flag} {}: not a file path", path.display());
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "{flag} {}: no such folder {}",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

/// Checks, before a run, that folder `dir` can be made or written into: it is a folder
/// or does not exist yet, and its parent exists.
pub fn check_output_dir(flag: &str, dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{flag} {}: not a folder", dir.display());
    }
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "{flag} {}: no such folder {}",
            dir.display(),
            parent.display()
        );
    }
    Ok(())
}

/// Writes `contents` to `path`. A regular file (or a new path) is written through a
/// temporary file and a rename, so a failure never leaves a half-written file behind;
/// anything else (a symlink, a FIFO, `/dev/stdout`) is written through, never replaced.
pub fn write_whole(path: &Path, contents: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file path", path.display()))?;
    let replaceable = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta.file_type().is_file(),
        Err(_) => true,
    };
    if !replaceable {
        return match std::fs::write(path, contents) {
            // A reader that stopped reading (`--trace /dev/stdout | head`): a normal end.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            result => result.with_context(|| format!("cannot write {}", path.display())),
        };
    }
    let mut temporary = path.to_path_buf();
    temporary.set_file_name(format!(".{}.tmp", file_name.to_string_lossy()));
    std::fs::write(&temporary, contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::rename(&temporary, path).with_context(|| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot write {}", path.display())
    })
}

/// The command that reproduces one run.
pub fn reproduce(argument: &str, seed: u64, bugs: &BugSet, faults: &[ScheduledFault]) -> String {
    let mut command = format!("faultline run {} --seed {seed}", shell_quote(argument));
    for bug in bugs.names() {
        command.push_str(&format!(" --bug {bug}"));
    }
    for spec in faults.iter().map(ScheduledFault::spec) {
        command.push_str(&format!(" --fault {spec}"));
    }
    command
}

/// The command that prints the event log around event `event` of one run.
pub fn replay_around(
    argument: &str,
    seed: u64,
    bugs: &BugSet,
    faults: &[ScheduledFault],
    event: u64,
) -> Option<String> {
    let mut command = format!("faultline replay {} --seed {seed}", shell_quote(argument));
    for bug in bugs.names() {
        command.push_str(&format!(" --bug {bug}"));
    }
    for spec in faults.iter().map(ScheduledFault::spec) {
        command.push_str(&format!(" --fault {spec}"));
    }
    command.push_str(&format!(" --around {event}"));
    Some(command)
}

/// `text` as one shell word: as is when it is plain, else in single quotes.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Where the browser demo is served unless `--web-base` or `FAULTLINE_WEB_BASE` says
/// otherwise (`cargo xtask web` serves there).
pub const WEB_BASE_DEFAULT: &str = "http://127.0.0.1:8080/";

/// The browser demo's address for a run, opened at `event` (the one that broke an
/// invariant). Only built-in scenarios have one: the page embeds the same catalogue.
pub fn web_url(
    base: &str,
    argument: &str,
    seed: u64,
    bugs: &BugSet,
    faults: &[ScheduledFault],
    event: Option<u64>,
) -> Option<String> {
    scenario::builtin(argument)?;
    let mut url = format!("{base}?scenario={argument}&seed={seed}");
    for bug in bugs.names() {
        url.push_str(&format!("&bug={bug}"));
    }
    for spec in faults.iter().map(ScheduledFault::spec) {
        url.push_str(&format!("&fault={spec}"));
    }
    if let Some(event) = event {
        url.push_str(&format!("&event={event}"));
    }
    Some(url)
}

/// The base for `web_url`: the flag, else the environment, else the default.
pub fn web_base(flag: Option<&str>) -> String {
    match flag {
        Some(base) => base.to_string(),
        None => {
            std::env::var("FAULTLINE_WEB_BASE").unwrap_or_else(|_| WEB_BASE_DEFAULT.to_string())
        }
    }
}

/// Reads `--fault` specs, checking them against the scenario; every problem at once.
pub fn faults(specs: &[String], scenario: &Scenario) -> Result<Vec<ScheduledFault>> {
    let mut faults = Vec::new();
    let mut problems = Vec::new();
    for spec in specs {
        match ScheduledFault::parse_spec(spec) {
            Ok(fault) => faults.push(fault),
            Err(problem) => problems.push(problem),
        }
    }
    let options = scenario::RunOptions {
        extra_faults: faults.clone(),
        ..Default::default()
    };
    if let Err(more) = scenario.check_options(&options) {
        problems.extend(more);
    }
    if problems.is_empty() {
        Ok(faults)
    } else {
        bail!("{}", problems.join("\n"))
    }
}
