//! The commands, one module per resource, and what they share.

mod fs;
mod gpu;
mod job;
mod net;
mod render;
mod secret;
mod service;
mod tenant;
mod validate;

use std::io::Read;
use std::path::{Path, PathBuf};

use moon_core::{Client, Config};

use crate::cli::{Cli, Command, NameRef};
use crate::exit::CliError;
use crate::output::Out;

/// What every command gets from the global flags.
pub struct Context {
    /// Where and how to print.
    pub out: Out,
    cli: GlobalFlags,
}

/// The global flags that choose and set up a backend.
struct GlobalFlags {
    home: Option<PathBuf>,
    backend: String,
    kubeconfig: Option<PathBuf>,
    kube_context: Option<String>,
    image: Option<String>,
    tolerations: Vec<String>,
    node_selector: Vec<String>,
}

impl Context {
    /// The configuration the flags ask for, over the environment's: the same
    /// builder Rust programs and Python use.
    pub fn config(&self) -> Result<Config, CliError> {
        let flags = &self.cli;
        let mut config = Config::from_env()?.with_backend(&flags.backend)?;
        if let Some(home) = &flags.home {
            // The agent is started with this path and outlives our working
            // directory, so a relative --home is made absolute here.
            let home = std::path::absolute(home)
                .map_err(|error| CliError::Input(format!("--home {}: {error}", home.display())))?;
            config = config.with_home(home);
        }
        if let Some(path) = &flags.kubeconfig {
            config = config.with_kubeconfig(path);
        }
        if let Some(context) = &flags.kube_context {
            config = config.with_context(context);
        }
        if let Some(image) = &flags.image {
            config = config.with_image(image);
        }
        if !flags.tolerations.is_empty() {
            config = config.with_tolerations(&flags.tolerations)?;
        }
        if !flags.node_selector.is_empty() {
            config = config.with_node_selector(&flags.node_selector)?;
        }
        Ok(config)
    }

    /// A handle on the chosen backend. Opened only by commands that need one,
    /// so that `moon validate` leaves no MOON_HOME behind.
    pub fn client(&self) -> Result<Client, CliError> {
        Ok(Client::connect(&self.config()?)?)
    }
}

/// Runs the command the user asked for.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let context = Context {
        out: Out { format: cli.output },
        cli: GlobalFlags {
            home: cli.home,
            backend: cli.backend,
            kubeconfig: cli.kubeconfig,
            kube_context: cli.context,
            image: cli.image,
            tolerations: cli.tolerations,
            node_selector: cli.node_selector,
        },
    };
    match cli.command {
        Command::Tenant(command) => tenant::run(&context, command).await,
        Command::Job(command) => job::run(&context, command).await,
        Command::Svc(command) => service::run(&context, command).await,
        Command::Secret(command) => secret::run(&context, command).await,
        Command::Validate(args) => validate::run(&context, &args.file),
        Command::Render(args) => render::run(&context, &args),
        Command::Gpu(command) => gpu::run(&context, command),
        Command::Fs(command) => fs::run(&context, command).await,
        Command::Net(command) => net::run(&context, command),
    }
}

/// What `delete` prints with `-o json|yaml`.
#[derive(serde::Serialize)]
struct Deleted<'a> {
    kind: &'static str,
    name: &'a str,
    outcome: &'static str,
}

/// Says that a job or tenant was deleted: `job team/x deleted`, or the same
/// as a document.
fn report_deleted(out: Out, kind: &'static str, name: &str) -> Result<(), CliError> {
    if out.is_table() {
        out.text(&format!("{kind} {name} deleted"))?;
    } else {
        out.document(&Deleted {
            kind,
            name,
            outcome: "deleted",
        })?;
    }
    Ok(())
}

/// How an apply went, in a word: `created`, `updated`, `unchanged`.
fn outcome_word(outcome: moon_core::backend::ApplyOutcome) -> &'static str {
    use moon_core::backend::ApplyOutcome;
    match outcome {
        ApplyOutcome::Created => "created",
        ApplyOutcome::Updated => "updated",
        ApplyOutcome::Unchanged => "unchanged",
    }
}

/// The text of a spec file, or of stdin for `-`.
fn read_spec(path: &Path) -> Result<String, CliError> {
    let result = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    };
    result.map_err(|error| {
        let name = if path == Path::new("-") {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        CliError::Input(format!("cannot read {name}: {error}"))
    })
}

/// A job or service named `TENANT/NAME`, or `NAME` with `--tenant`: its
/// tenant and name; `kind` words the error.
fn parse_ref(kind: &str, named: &NameRef) -> Result<(String, String), CliError> {
    let usage = || {
        CliError::Input(format!(
            "cannot read {kind} {:?}: give it as TENANT/NAME, or as NAME with --tenant",
            named.name
        ))
    };
    let (tenant, name) = match (named.name.split_once('/'), &named.tenant) {
        (Some((tenant, name)), None) => (tenant.to_string(), name.to_string()),
        (Some((tenant, name)), Some(flag)) if flag == tenant => {
            (tenant.to_string(), name.to_string())
        }
        (Some((tenant, _)), Some(flag)) => {
            return Err(CliError::Input(format!(
                "{kind} {:?} is in tenant {tenant:?} but --tenant says {flag:?}",
                named.name
            )));
        }
        (None, Some(tenant)) => (tenant.clone(), named.name.clone()),
        (None, None) => return Err(usage()),
    };
    if tenant.is_empty() || name.is_empty() || name.contains('/') {
        return Err(usage());
    }
    Ok((tenant, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, tenant: Option<&str>) -> NameRef {
        NameRef {
            name: name.into(),
            tenant: tenant.map(String::from),
        }
    }

    fn pair(tenant: &str, name: &str) -> (String, String) {
        (tenant.into(), name.into())
    }

    #[test]
    fn jobs_and_services_are_named_with_their_tenant() {
        assert_eq!(
            parse_ref("job", &named("vision/xgb", None)).unwrap(),
            pair("vision", "xgb")
        );
        assert_eq!(
            parse_ref("job", &named("xgb", Some("vision"))).unwrap(),
            pair("vision", "xgb")
        );
        assert_eq!(
            parse_ref("job", &named("vision/xgb", Some("vision"))).unwrap(),
            pair("vision", "xgb")
        );
        for (name, tenant) in [
            ("xgb", None),
            ("vision/xgb", Some("nlp")),
            ("/xgb", None),
            ("vision/", None),
            ("a/b/c", None),
        ] {
            let error = parse_ref("job", &named(name, tenant)).unwrap_err();
            assert_eq!(
                error.code(),
                crate::exit::INVALID_INPUT,
                "{name} {tenant:?}"
            );
        }
        let Err(CliError::Input(message)) = parse_ref("service", &named("mnist", None)) else {
            panic!("a name without a tenant is refused");
        };
        assert_eq!(
            message,
            "cannot read service \"mnist\": give it as TENANT/NAME, or as NAME with --tenant"
        );
    }
}
