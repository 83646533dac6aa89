//! What a replica inherits from the process that submitted its job: the
//! variables it needs to find the same programs, the same Python and the
//! same locale (the list below), plus the ones its role names in
//! `inheritEnv`. Nothing else of the submitter's environment (cloud keys,
//! API tokens, whatever a notebook's shell exported) is stored or passed on.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::spec::{Job, Role};

/// Variables every replica inherits, and why (`docs/local-backend.md` has
/// the list for users):
/// - finding the same programs and the same Python, in a venv or a conda
///   environment, with the same extra modules and shared libraries;
/// - where the CUDA toolkit is, for code that builds or loads kernels;
/// - who runs it and where home and temporary files are;
/// - the locale and time zone, so that output reads as the submitter's does.
///
/// Left out on purpose: `TERM` (a replica has no terminal; its output goes
/// to a log, where colour codes are noise), proxy settings (their URLs may
/// carry a password) and everything else. A role names what else it needs
/// in `inheritEnv`, or gets it from `env` or a secret.
pub const INHERITED: &[&str] = &[
    "PATH",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONUSERBASE",
    "LD_LIBRARY_PATH",
    "CUDA_HOME",
    "CUDA_PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "LANG",
    "LANGUAGE",
    "TZ",
];

/// Prefixes of variables every replica inherits: the locale's categories.
pub const INHERITED_PREFIXES: &[&str] = &["LC_"];

/// Whether every replica inherits `name`.
pub fn always_inherited(name: &str) -> bool {
    INHERITED.contains(&name)
        || INHERITED_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// What is stored of the submitter's environment `vars` for `job`: the
/// variables every replica inherits and those any of its roles names.
/// Variables that are not UTF-8 are left out, as they cannot be stored.
pub fn submitted(
    job: &Job,
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> BTreeMap<String, String> {
    let named = |name: &str| {
        job.roles
            .iter()
            .any(|role| role.inherit_env.iter().any(|wanted| wanted == name))
    };
    vars.into_iter()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| always_inherited(name) || named(name))
        .collect()
}

/// What one replica of `role` inherits of what was stored at submission.
pub fn inherited(submitted: &BTreeMap<String, String>, role: &Role) -> BTreeMap<String, String> {
    submitted
        .iter()
        .filter(|(name, _)| always_inherited(name) || role.inherit_env.contains(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Framework;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(name, value)| (OsString::from(name), OsString::from(value)))
            .collect()
    }

    #[test]
    fn only_the_list_and_the_named_variables_are_kept() {
        let mut worker = Role::new("worker", 1, &["python"]);
        worker.inherit_env = vec!["WANDB_API_KEY".into()];
        let server = Role::new("server", 1, &["python"]);
        let job = Job::new(
            "j",
            "t",
            Framework::Custom,
            vec![worker.clone(), server.clone()],
        );
        let stored = submitted(
            &job,
            vars(&[
                ("PATH", "/venv/bin:/usr/bin"),
                ("LC_ALL", "C.UTF-8"),
                ("VIRTUAL_ENV", "/venv"),
                ("WANDB_API_KEY", "w-123"),
                ("AWS_SECRET_ACCESS_KEY", "a-456"),
                ("TERM", "xterm"),
            ]),
        );
        assert_eq!(
            stored.keys().collect::<Vec<_>>(),
            ["LC_ALL", "PATH", "VIRTUAL_ENV", "WANDB_API_KEY"]
        );
        assert_eq!(inherited(&stored, &worker)["WANDB_API_KEY"], "w-123");
        let for_server = inherited(&stored, &server);
        assert!(!for_server.contains_key("WANDB_API_KEY"));
        assert_eq!(for_server["PATH"], "/venv/bin:/usr/bin");
    }
}
