//! `cargo xtask web [--build-only] [--port N]`: builds the browser demo into `dist/`
//! (`index.html` plus the wasm-bindgen `--target web` output) and serves it on 127.0.0.1.
//!
//! It writes only inside `dist/` and never binds anything but the loopback address.

use std::process::Command;

use anyhow::Context;

use crate::{cargo, exec, root, UsageError};

const PORT_DEFAULT: u16 = 8080;
const WASM_PATH: &str = "target/wasm32-unknown-unknown/web/web_ui.wasm";

#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub build_only: bool,
    pub port: u16,
}

impl Args {
    pub fn parse(args: &[String]) -> anyhow::Result<Args> {
        let mut parsed = Args {
            build_only: false,
            port: PORT_DEFAULT,
        };
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            match arg.as_str() {
                "--build-only" => parsed.build_only = true,
                "--port" => {
                    let value = rest.next().ok_or_else(|| usage("--port needs a number"))?;
                    parsed.port = parse_port(value)?;
                }
                other => match other.strip_prefix("--port=") {
                    Some(value) => parsed.port = parse_port(value)?,
                    None => return Err(usage(&format!("unknown flag `{other}` for `web`"))),
                },
            }
        }
        Ok(parsed)
    }
}

fn parse_port(value: &str) -> anyhow::Result<u16> {
    match value.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(usage(&format!("--port wants 1..65535, got `{value}`"))),
    }
}

fn usage(message: &str) -> anyhow::Error {
    UsageError(message.to_string()).into()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    build()?;
    if args.build_only {
        return Ok(());
    }
    crate::serve::serve(&root().join("dist"), args.port)
}

/// Compiles the app to wasm, generates its JavaScript glue into `dist/` and copies the
/// entry page beside it. Installs the wasm target and wasm-bindgen-cli first if missing,
/// so a fresh checkout needs only `cargo xtask web`.
pub fn build() -> anyhow::Result<()> {
    crate::test::ensure_wasm_target()?;
    crate::test::ensure_wasm_bindgen()?;
    let target = "wasm32-unknown-unknown";
    exec(cargo().args([
        "build",
        "-p",
        "web-ui",
        "--profile",
        "web",
        "--target",
        target,
    ]))?;
    let dist = root().join("dist");
    let mut bindgen = Command::new("wasm-bindgen");
    bindgen.current_dir(root());
    bindgen.args([
        "--target",
        "web",
        "--out-dir",
        "dist",
        "--no-typescript",
        "--remove-name-section",
        "--remove-producers-section",
        WASM_PATH,
    ]);
    exec(&mut bindgen)?;
    let page = root().join("index.html");
    std::fs::copy(&page, dist.join("index.html"))
        .with_context(|| format!("copying {} into dist/", page.display()))?;
    let wasm_bytes = std::fs::metadata(dist.join("web_ui_bg.wasm"))
        .context("wasm-bindgen wrote no dist/web_ui_bg.wasm")?
        .len();
    println!("built dist/ (web_ui_bg.wasm: {} KiB)", wasm_bytes / 1024);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Args> {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        Args::parse(&args)
    }

    #[test]
    fn defaults_serve_on_8080() {
        assert_eq!(
            parse(&[]).unwrap(),
            Args {
                build_only: false,
                port: 8080
            }
        );
    }

    #[test]
    fn flags_are_read_in_both_spellings() {
        let args = parse(&["--build-only", "--port", "9000"]).unwrap();
        assert_eq!(
            args,
            Args {
                build_only: true,
                port: 9000
            }
        );
        assert_eq!(parse(&["--port=81"]).unwrap().port, 81);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for bad in [
            &["--port"][..],
            &["--port", "0"],
            &["--port", "x"],
            &["--fast"],
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.is::<UsageError>(), "{bad:?}: {error}");
        }
    }
}
