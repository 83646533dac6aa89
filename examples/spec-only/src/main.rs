//! What a service that admits specs (a web form, a CI check, an admission
//! webhook) needs of moon, without any backend: read a spec of any kind,
//! check it with every error's field path and rule, and render the
//! Kubernetes objects it becomes.
//!
//! ```text
//! cargo run -p moon-example-spec-only -- job.yaml          # YAML stream
//! cargo run -p moon-example-spec-only -- --json job.yaml   # one JSON List
//! ```
//!
//! Exits 0 with the objects on stdout, 2 with the broken rules on stderr.

use std::io::Write;
use std::process::ExitCode;

use moon_spec::Error;
use moon_spec::kubernetes::{RenderOptions, render_spec, to_json, to_yaml};
use moon_spec::spec::spec_from_yaml;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|arg| arg == "--json");
    args.retain(|arg| arg != "--json");
    let [path] = args.as_slice() else {
        eprintln!("usage: moon-example-spec-only [--json] SPEC.yaml");
        return ExitCode::from(64);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("cannot read {path}: {error}");
            return ExitCode::from(66);
        }
    };
    let rendered =
        spec_from_yaml(&text, None).and_then(|spec| render_spec(&spec, &RenderOptions::default()));
    let printed = match rendered {
        Ok(objects) if json => writeln!(std::io::stdout(), "{}", to_json(&objects)),
        Ok(objects) => write!(std::io::stdout(), "{}", to_yaml(&objects)),
        Err(Error::InvalidSpec { kind, errors }) => {
            eprintln!("invalid {kind}:");
            for error in &errors.0 {
                eprintln!("  {error} [{}]", error.rule);
            }
            return ExitCode::from(2);
        }
        Err(other) => {
            eprintln!("{other}");
            return ExitCode::from(1);
        }
    };
    // A reader that stops early (`| head`) wanted no more: no failure.
    match printed {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => ExitCode::from(74),
        _ => ExitCode::SUCCESS,
    }
}
