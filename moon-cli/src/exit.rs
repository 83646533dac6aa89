//! What the CLI exits with, and how it reports the error that made it stop.
//!
//! | code | meaning                                                               |
//! |------|-----------------------------------------------------------------------|
//! | 0    | success                                                               |
//! | 1    | the job ended Failed or Cancelled (`--wait`, `--follow`, `job wait`); the connection is denied (`net check`) |
//! | 2    | invalid input: a spec that breaks a rule, a bad flag, an unreadable file |
//! | 3    | not found: no such tenant, job, replica, secret or stored object      |
//! | 4    | timed out (`--timeout`)                                               |
//! | 5    | refused: quota, permission, a name already taken, a conflicting state |
//! | 6    | anything else: files, the state database, the agent                   |
//! | 7    | no GPUs to read: no NVML on this machine, or NVML failed              |
//! | 8    | not supported by this backend (e.g. `ttlSecondsAfterFinished` on Kubernetes) |

use std::io::{self, Write};
use std::process::ExitCode;

use moon_core::Error;
use moon_core::{gpu, storage};

/// Success.
pub const SUCCESS: u8 = 0;
/// The job ended Failed or Cancelled while being waited for; or, for
/// `moon net check`, the connection is denied (as `grep` says "no match").
pub const JOB_FAILED: u8 = 1;
/// A spec broke a rule, a flag was wrong, or an input file could not be read.
/// clap exits with this code for usage errors on its own.
pub const INVALID_INPUT: u8 = 2;
/// A tenant, job, replica or secret does not exist.
pub const NOT_FOUND: u8 = 3;
/// A wait ran out of time.
pub const TIMED_OUT: u8 = 4;
/// The backend refused the request.
pub const REFUSED: u8 = 5;
/// Anything else.
pub const OTHER: u8 = 6;
/// This machine's GPUs cannot be read: no NVML here, or NVML failed. A
/// code of its own, so that a script can tell "no GPUs to look at" apart.
pub const NO_GPUS: u8 = 7;
/// The backend does not offer what was asked; another backend may. A code of
/// its own, so that a script can tell it from a refusal of this request.
pub const NOT_SUPPORTED: u8 = 8;

/// Said after the error when there is no NVML.
const NO_NVML_HINT: &str = "\
hint: on a machine without NVIDIA's driver, set MOON_GPU_INVENTORY to a file that describes
its GPUs (YAML or JSON, in the schema `moon gpu ls -o yaml` prints)";

/// The exit code table, as printed at the end of `moon --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the job ended Failed or Cancelled (submit --wait/--follow, job wait); denied (net check)
  2  invalid input: a spec that breaks a rule, a bad flag, an unreadable file
  3  not found: no such tenant, job, replica, secret or stored object (moon fs)
  4  timed out (--timeout)
  5  refused: quota exceeded, permission denied, name already taken, conflicting state
  6  anything else: file system, state database, agent, a storage server unavailable
  7  no GPUs to read: no NVML on this machine, or NVML failed (moon gpu)
  8  not supported by this backend (ttlSecondsAfterFinished on kubernetes)";

/// Why a command stopped short.
#[derive(Debug)]
pub enum CliError {
    /// moon itself reported an error.
    Core(Error),
    /// The command line or an input file was unusable.
    Input(String),
    /// Writing the output failed.
    Output(io::Error),
    /// `moon net check` found the connection denied (its answer is
    /// already printed).
    Denied,
}

impl From<Error> for CliError {
    fn from(error: Error) -> Self {
        CliError::Core(error)
    }
}

impl From<moon_core::SpecError> for CliError {
    fn from(error: moon_core::SpecError) -> Self {
        CliError::Core(error.into())
    }
}

impl From<storage::Error> for CliError {
    fn from(error: storage::Error) -> Self {
        CliError::Core(error.into())
    }
}

impl From<io::Error> for CliError {
    fn from(error: io::Error) -> Self {
        CliError::Output(error)
    }
}

/// The one mapping from moon's errors to exit codes. moon-core's enum is
/// non-exhaustive, so a variant it adds exits with `OTHER` until it is given
/// a code of its own here.
pub fn code(error: &Error) -> u8 {
    match error {
        Error::JobFailed { .. } => JOB_FAILED,
        Error::InvalidSpec { .. } => INVALID_INPUT,
        Error::NotFound { .. } => NOT_FOUND,
        Error::Timeout { .. } => TIMED_OUT,
        // A taken name and a request that conflicts with the job's state
        // are refusals too: retrying the same request cannot succeed.
        Error::QuotaExceeded(_)
        | Error::PermissionDenied(_)
        | Error::AlreadyExists { .. }
        | Error::Conflict(_) => REFUSED,
        Error::NotSupported(_) => NOT_SUPPORTED,
        Error::Io { .. } | Error::Database(_) | Error::Agent(_) | Error::Cluster(_) => OTHER,
        Error::Gpu(gpu::Error::NoNvml(_) | gpu::Error::Nvml(_)) => NO_GPUS,
        // A MOON_GPU_INVENTORY file that cannot be used is a bad input file.
        Error::Gpu(
            gpu::Error::Inventory { .. }
            | gpu::Error::InvalidInventory { .. }
            | gpu::Error::InvalidSelector { .. },
        ) => INVALID_INPUT,
        Error::Storage(error) => storage_code(error),
        Error::Net(moon_core::net::Error::InvalidPolicy { .. }) => INVALID_INPUT,
        _ => OTHER,
    }
}

/// A store's error (`moon fs`) as the same codes: a missing object is not found, a bad URL or
/// path invalid input, a refusal refused, a server that cannot be reached anything else.
fn storage_code(error: &storage::Error) -> u8 {
    use storage::Error as E;
    match error {
        E::NotFound { .. } => NOT_FOUND,
        E::InvalidPath { .. } | E::InvalidRange { .. } | E::InvalidUrl { .. } => INVALID_INPUT,
        E::PermissionDenied { .. }
        | E::QuotaExceeded { .. }
        | E::AlreadyExists { .. }
        | E::PreconditionFailed { .. } => REFUSED,
        E::NotSupported { .. } => NOT_SUPPORTED,
        // Unavailable, and variants moon-storage adds later.
        _ => OTHER,
    }
}

impl CliError {
    /// The code to exit with.
    pub fn code(&self) -> u8 {
        match self {
            CliError::Core(error) => code(error),
            CliError::Input(_) => INVALID_INPUT,
            // A reader that went away (`moon job logs -f ... | head`) wanted
            // no more; that is no failure.
            CliError::Output(error) if error.kind() == io::ErrorKind::BrokenPipe => SUCCESS,
            CliError::Output(_) => OTHER,
            CliError::Denied => JOB_FAILED,
        }
    }

    /// What is printed after `error: `; an invalid spec gets one indented
    /// line per broken rule so that each can be fixed in turn.
    pub fn message(&self) -> String {
        match self {
            CliError::Core(Error::InvalidSpec { kind, errors }) => {
                let mut text = format!("invalid {kind}:");
                for error in &errors.0 {
                    text.push_str("\n  ");
                    text.push_str(&error.to_string());
                }
                text
            }
            CliError::Core(error @ Error::Gpu(gpu::Error::NoNvml(_))) => {
                format!("{error}\n{NO_NVML_HINT}")
            }
            CliError::Core(error) => error.to_string(),
            CliError::Input(message) => message.clone(),
            CliError::Output(error) => format!("writing output: {error}"),
            CliError::Denied => String::new(),
        }
    }
}

/// Prints the error, if any, to stderr and turns the outcome into the exit code.
pub fn finish(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::from(SUCCESS),
        Err(error) => {
            let code = error.code();
            if code != SUCCESS && !matches!(error, CliError::Denied) {
                // Nothing better can be done if stderr is gone too.
                let _ = writeln!(io::stderr().lock(), "error: {}", error.message());
            }
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moon_core::error::rule;
    use moon_core::{DatabaseError, FieldError, FieldErrors, QuotaRefusal};

    fn io_error() -> Error {
        Error::io(
            "reading",
            "/nowhere",
            io::Error::from(io::ErrorKind::NotFound),
        )
    }

    #[test]
    fn every_error_has_its_documented_code() {
        let cases: Vec<(Error, u8)> = vec![
            (
                Error::JobFailed {
                    job: "vision/xgb".into(),
                    phase: "failed".into(),
                    reason: "worker-0 exited 1".into(),
                },
                1,
            ),
            (
                Error::invalid(
                    "job",
                    "roles[1].replicas",
                    rule::RANGE,
                    "must be at least 1, got 0",
                ),
                2,
            ),
            (
                Error::NotFound {
                    kind: "job",
                    name: "vision/xgb".into(),
                },
                3,
            ),
            (
                Error::Timeout {
                    what: "job vision/xgb".into(),
                    seconds: 5.0,
                },
                4,
            ),
            (
                Error::QuotaExceeded(Box::new(QuotaRefusal::new(
                    "tenant vision",
                    "gpus",
                    "4",
                    "8",
                    "4",
                    "tenant vision: gpus 4 of 4 in use, job asks 8",
                ))),
                5,
            ),
            (Error::PermissionDenied("not a member".into()), 5),
            (
                Error::AlreadyExists {
                    kind: "job",
                    name: "vision/xgb".into(),
                },
                5,
            ),
            (Error::Conflict("already ended".into()), 5),
            (Error::NotSupported("ttl on kubernetes".into()), 8),
            (io_error(), 6),
            (
                Error::Database(DatabaseError::new("database is locked", true)),
                6,
            ),
            (Error::Agent("cannot start".into()), 6),
            (Error::Gpu(gpu::Error::NoNvml("no driver".into())), 7),
            (Error::Gpu(gpu::Error::Nvml("unknown error".into())), 7),
            (
                Error::Gpu(gpu::Error::Inventory {
                    path: "/nowhere/gpus.yaml".into(),
                    message: "not found".into(),
                }),
                2,
            ),
            (
                Error::Gpu("H100:x".parse::<gpu::GpuSelector>().unwrap_err()),
                2,
            ),
            (storage::Error::NotFound { path: "x".into() }.into(), 3),
            (
                storage::Error::InvalidUrl {
                    url: "s3://b".into(),
                    reason: "unknown scheme 's3'".into(),
                }
                .into(),
                2,
            ),
            (
                storage::Error::InvalidPath {
                    path: "/x".into(),
                    reason: "absolute".into(),
                }
                .into(),
                2,
            ),
            (
                storage::Error::QuotaExceeded {
                    message: "space quota".into(),
                }
                .into(),
                5,
            ),
            (
                storage::Error::PermissionDenied {
                    path: "x".into(),
                    message: "mode 0700".into(),
                }
                .into(),
                5,
            ),
            (
                storage::Error::Unavailable {
                    backend: "seaweedfs".into(),
                    message: "connection refused".into(),
                }
                .into(),
                6,
            ),
            (
                storage::Error::NotSupported {
                    backend: "local".into(),
                    operation: "append".into(),
                }
                .into(),
                8,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(code(&error), expected, "{error:?}");
            assert_eq!(CliError::Core(error).code(), expected);
        }
    }

    #[test]
    fn cli_errors_have_their_codes() {
        assert_eq!(CliError::Input("bad flag".into()).code(), INVALID_INPUT);
        assert_eq!(
            CliError::Output(io::Error::from(io::ErrorKind::BrokenPipe)).code(),
            SUCCESS
        );
        assert_eq!(
            CliError::Output(io::Error::from(io::ErrorKind::PermissionDenied)).code(),
            OTHER
        );
    }

    #[test]
    fn invalid_specs_list_one_error_per_line() {
        let error = CliError::Core(Error::InvalidSpec {
            kind: "job",
            errors: FieldErrors(vec![
                FieldError::new(
                    "roles[1].replicas",
                    rule::RANGE,
                    "must be at least 1, got 0",
                ),
                FieldError::new("", rule::REQUIRED, "a job needs at least one role"),
            ]),
        });
        assert_eq!(
            error.message(),
            "invalid job:\n  roles[1].replicas: must be at least 1, got 0\n  a job needs at least one role"
        );
    }

    #[test]
    fn no_nvml_comes_with_a_hint() {
        let error = CliError::Core(Error::Gpu(gpu::Error::NoNvml(
            "libnvidia-ml.so.1 was not found".into(),
        )));
        let message = error.message();
        assert!(
            message.starts_with("no NVML on this machine: libnvidia-ml.so.1 was not found\nhint: "),
            "{message}"
        );
        assert!(message.contains("MOON_GPU_INVENTORY"), "{message}");
    }

    #[test]
    fn other_errors_print_as_moon_words_them() {
        let error = CliError::Core(Error::NotFound {
            kind: "job",
            name: "vision/xgb".into(),
        });
        assert_eq!(error.message(), r#"job "vision/xgb" not found"#);
    }
}
