//! [`GlusterVolumes`]: one-brick volumes with a size limit, made and removed with the gluster
//! CLI of a glusterd on this machine.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

use super::check_volume_name;
use super::cli::{Answer, Cli, Refusal, child_text};
use super::mount::unavailable;

/// How to reach glusterd through its CLI.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VolumesOptions {
    /// The gluster CLI (`gluster` on the `PATH` by default).
    pub program: PathBuf,
    /// glusterd's CLI socket, where it is not the default one (`--glusterd-sock`).
    pub glusterd_socket: Option<PathBuf>,
    /// Where the CLI logs (`--log-file`); gluster's default otherwise.
    pub log_file: Option<PathBuf>,
    /// How long one CLI command may take.
    pub timeout: Duration,
    /// How long bricks may count on the usage they last learnt before checking the quota again
    /// (gluster's `soft-timeout` and `hard-timeout`, set on every volume made); `None` keeps
    /// gluster's defaults (60 s below the soft limit, 5 s above it), during which writes can
    /// pass the limit. Zero makes every write check, at some cost in speed.
    pub quota_recheck: Option<Duration>,
}

impl Default for VolumesOptions {
    fn default() -> Self {
        VolumesOptions {
            program: PathBuf::from("gluster"),
            glusterd_socket: None,
            log_file: None,
            timeout: Duration::from_secs(120),
            quota_recheck: None,
        }
    }
}

impl VolumesOptions {
    /// These options talking to the glusterd behind `socket`.
    pub fn with_glusterd_socket(mut self, socket: impl Into<PathBuf>) -> Self {
        self.glusterd_socket = Some(socket.into());
        self
    }

    /// These options logging the CLI to `file`.
    pub fn with_log_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.log_file = Some(file.into());
        self
    }

    /// These options allowing `timeout` for one CLI command.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// These options making bricks check the quota at least every `interval`.
    pub fn with_quota_recheck(mut self, interval: Duration) -> Self {
        self.quota_recheck = Some(interval);
        self
    }
}

/// What gluster says of one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VolumeInfo {
    /// The volume's name.
    pub name: String,
    /// Its bricks, as `HOST:/dir`.
    pub bricks: Vec<String>,
    /// Whether it is started (only a started volume can be mounted).
    pub started: bool,
    /// Whether gluster's quota is on for it.
    pub quota_enabled: bool,
    /// The quota on its root, in bytes, where one is set.
    pub size_limit: Option<u64>,
    /// The bytes used below its root, as the quota counts them, where a quota is set.
    pub used: Option<u64>,
}

/// Makes, grows, lists and removes one-brick gluster volumes on this machine, each with a size
/// limit (gluster's directory quota on the volume's root).
///
/// Volume `NAME` has the brick `HOST:BRICK_ROOT/NAME`; `HOST` must be a name of this machine that
/// other gluster peers and clients can resolve (gluster refuses `localhost` and loopback
/// addresses as brick hosts). Every operation is idempotent: creating a volume that exists with
/// the same brick and limit finishes whatever an interrupted create left undone; deleting a
/// volume that is gone only makes sure its brick directory is gone too. A volume of the same
/// name with another brick or limit is [`Error::PreconditionFailed`], never changed.
///
/// Bricks live on the file system of `BRICK_ROOT` (gluster's `force`: it warns against bricks on
/// the root file system). A volume in use by a mount keeps working only until it is deleted:
/// unmount its stores ([`super::GlusterStore::unmount`]) first.
#[derive(Debug, Clone)]
pub struct GlusterVolumes {
    host: String,
    brick_root: PathBuf,
    cli: Cli,
    quota_recheck: Option<Duration>,
}

impl GlusterVolumes {
    /// Volumes with bricks on `host` in `brick_root` (an absolute directory, made when needed).
    pub fn new(
        host: impl Into<String>,
        brick_root: impl Into<PathBuf>,
        options: VolumesOptions,
    ) -> Result<Self> {
        let (host, brick_root) = (host.into(), brick_root.into());
        if host.is_empty() || host == "localhost" || host.starts_with("127.") || host == "::1" {
            return Err(Error::PreconditionFailed {
                path: host,
                message: "gluster refuses loopback addresses and 'localhost' as brick hosts; \
                          name this machine by a host name that resolves to it"
                    .to_string(),
            });
        }
        if !brick_root.is_absolute() {
            return Err(Error::PreconditionFailed {
                path: brick_root.display().to_string(),
                message: "the brick root must be an absolute directory".to_string(),
            });
        }
        Ok(GlusterVolumes {
            host,
            brick_root,
            cli: Cli {
                program: options.program,
                socket: options.glusterd_socket,
                log_file: options.log_file,
                timeout: options.timeout,
            },
            quota_recheck: options.quota_recheck,
        })
    }

    /// The brick directory of volume `name`.
    pub fn brick_dir(&self, name: &str) -> PathBuf {
        self.brick_root.join(name)
    }

    fn brick(&self, name: &str) -> String {
        format!("{}:{}", self.host, self.brick_dir(name).display())
    }

    /// Makes volume `name`, started, with a quota of `size_limit` bytes; see the type's docs for
    /// what an existing volume of that name does.
    pub async fn create(&self, name: &str, size_limit: u64) -> Result<VolumeInfo> {
        valid(name)?;
        let brick = self.brick(name);
        let info = match self.info(name).await {
            Ok(info) => info,
            Err(Error::NotFound { .. }) => {
                self.make_brick_dir(name)?;
                let made = self
                    .cli
                    .run(&["volume", "create", name, &brick, "force"])
                    .await?;
                match made {
                    Ok(_) => {}
                    // Made meanwhile by someone else: checked below like any existing volume.
                    Err(refusal) if refusal.message.contains("already exists") => {}
                    Err(refusal) => return Err(refused(name, refusal)),
                }
                self.info(name).await?
            }
            Err(e) => return Err(e),
        };
        if info.bricks != [brick.clone()] {
            return Err(Error::PreconditionFailed {
                path: name.to_string(),
                message: format!(
                    "a volume of this name exists with bricks {}, not {brick}",
                    info.bricks.join(", ")
                ),
            });
        }
        if let Some(limit) = info.size_limit.filter(|&l| l != size_limit) {
            return Err(Error::PreconditionFailed {
                path: name.to_string(),
                message: format!(
                    "the volume exists with a limit of {limit} bytes, not {size_limit}; expand \
                     it to raise the limit"
                ),
            });
        }
        if !info.started {
            self.ok(name, &["volume", "start", name], "already started")
                .await?;
        }
        self.ok(
            name,
            &["volume", "quota", name, "enable"],
            "already enabled",
        )
        .await?;
        if let Some(interval) = self.quota_recheck {
            let seconds = format!("{}", interval.as_secs());
            for which in ["soft-timeout", "hard-timeout"] {
                self.ok(name, &["volume", "quota", name, which, &seconds], "")
                    .await?;
            }
        }
        if info.size_limit.is_none() {
            self.set_limit(name, size_limit).await?;
        }
        self.info(name).await
    }

    /// Raises the quota of volume `name` to `size_limit` bytes. Lowering it is
    /// [`Error::PreconditionFailed`]: the data may not fit.
    pub async fn expand(&self, name: &str, size_limit: u64) -> Result<VolumeInfo> {
        valid(name)?;
        let info = self.info(name).await?;
        match info.size_limit {
            Some(limit) if limit == size_limit => return Ok(info),
            Some(limit) if limit > size_limit => {
                return Err(Error::PreconditionFailed {
                    path: name.to_string(),
                    message: format!(
                        "the volume's limit is {limit} bytes; shrinking it to {size_limit} is \
                         not supported"
                    ),
                });
            }
            _ => {}
        }
        if !info.quota_enabled {
            self.ok(
                name,
                &["volume", "quota", name, "enable"],
                "already enabled",
            )
            .await?;
        }
        self.set_limit(name, size_limit).await?;
        self.info(name).await
    }

    /// Stops and deletes volume `name` and removes its brick directory, data included. A volume
    /// this provisioner did not make (another brick) is [`Error::PreconditionFailed`] and is
    /// left alone. `Ok(false)` when there was no such volume.
    pub async fn delete(&self, name: &str) -> Result<bool> {
        valid(name)?;
        let existed = match self.info(name).await {
            Ok(info) => {
                let brick = self.brick(name);
                if info.bricks != [brick.clone()] {
                    return Err(Error::PreconditionFailed {
                        path: name.to_string(),
                        message: format!(
                            "the volume's bricks are {}, not {brick}: it was not made here",
                            info.bricks.join(", ")
                        ),
                    });
                }
                if info.started {
                    self.ok(
                        name,
                        &["volume", "stop", name, "force"],
                        "is not in the started",
                    )
                    .await?;
                }
                self.ok(name, &["volume", "delete", name], "does not exist")
                    .await?;
                true
            }
            Err(Error::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        let dir = self.brick_dir(name);
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir))
            .await
            .map_err(|e| unavailable(format!("worker thread failed: {e}")))?;
        match removed {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(existed),
            Err(e) => Err(unavailable(format!(
                "deleted volume {name} but not its brick {}: {e}",
                self.brick_dir(name).display()
            ))),
        }
    }

    /// The names of every volume glusterd knows, made here or not, in its order.
    pub async fn list(&self) -> Result<Vec<String>> {
        let answer = self
            .cli
            .run(&["volume", "list"])
            .await?
            .map_err(|refusal| refused("volume list", refusal))?;
        let doc = answer.doc()?;
        Ok(doc
            .descendants()
            .filter(|n| n.has_tag_name("volList"))
            .flat_map(|list| list.children().filter(|c| c.has_tag_name("volume")))
            .filter_map(|v| v.text())
            .map(|t| t.trim().to_string())
            .collect())
    }

    /// What gluster says of volume `name`; [`Error::NotFound`] when there is none.
    pub async fn info(&self, name: &str) -> Result<VolumeInfo> {
        valid(name)?;
        let answer = self
            .cli
            .run(&["volume", "info", name])
            .await?
            .map_err(|refusal| refused(name, refusal))?;
        let mut info = parse_info(&answer, name)?;
        if info.quota_enabled {
            (info.size_limit, info.used) = self.quota_of(name).await?;
        }
        Ok(info)
    }

    async fn quota_of(&self, name: &str) -> Result<(Option<u64>, Option<u64>)> {
        let answer = self
            .cli
            .run(&["volume", "quota", name, "list", "/"])
            .await?;
        match answer {
            Ok(answer) => parse_quota(&answer),
            // Quota on, and no limit set yet.
            Err(refusal) if refusal.message.contains("No quota configured") => Ok((None, None)),
            Err(refusal) => Err(refused(name, refusal)),
        }
    }

    async fn set_limit(&self, name: &str, size_limit: u64) -> Result<()> {
        let bytes = size_limit.to_string();
        self.ok(
            name,
            &["volume", "quota", name, "limit-usage", "/", &bytes],
            "",
        )
        .await
    }

    /// Runs a command whose refusal with `harmless` in its message means the work is done.
    async fn ok(&self, name: &str, args: &[&str], harmless: &str) -> Result<()> {
        match self.cli.run(args).await? {
            Ok(_) => Ok(()),
            Err(refusal) if !harmless.is_empty() && refusal.message.contains(harmless) => Ok(()),
            Err(refusal) => Err(refused(name, refusal)),
        }
    }

    fn make_brick_dir(&self, name: &str) -> Result<()> {
        let dir = self.brick_dir(name);
        std::fs::create_dir_all(&dir).map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => Error::PermissionDenied {
                path: dir.display().to_string(),
                message: format!("cannot make the brick directory: {e}"),
            },
            _ => unavailable(format!(
                "cannot make the brick directory {}: {e}",
                dir.display()
            )),
        })
    }
}

fn valid(name: &str) -> Result<()> {
    check_volume_name(name).map_err(|reason| Error::InvalidPath {
        path: name.to_string(),
        reason,
    })
}

/// glusterd's refusal of a command on `name`, as the error it means.
fn refused(name: &str, refusal: Refusal) -> Error {
    let message = refusal.message;
    if message.contains("does not exist") {
        return Error::NotFound {
            path: name.to_string(),
        };
    }
    let transient = [
        "Connection failed",
        "not connected",
        "Commit failed",
        "Staging failed",
        "timed out",
        "Another transaction",
        "Locking failed",
    ];
    if transient.iter().any(|t| message.contains(t)) {
        return unavailable(message);
    }
    Error::PreconditionFailed {
        path: name.to_string(),
        message,
    }
}

/// The volume of a `volume info` answer.
fn parse_info(answer: &Answer, name: &str) -> Result<VolumeInfo> {
    let doc = answer.doc()?;
    let volume = doc
        .descendants()
        .find(|n| n.has_tag_name("volume") && child_text(*n, "name") == Some(name))
        .ok_or_else(|| Error::NotFound {
            path: name.to_string(),
        })?;
    let bricks = volume
        .descendants()
        .filter(|n| n.has_tag_name("brick"))
        .filter_map(|b| child_text(b, "name"))
        .map(|t| t.trim().to_string())
        .collect();
    let started = child_text(volume, "status").map(str::trim) == Some("1");
    let quota = volume
        .descendants()
        .filter(|n| n.has_tag_name("option"))
        .any(|o| {
            child_text(o, "name") == Some("features.quota") && child_text(o, "value") == Some("on")
        });
    Ok(VolumeInfo {
        name: name.to_string(),
        bricks,
        started,
        quota_enabled: quota,
        size_limit: None,
        used: None,
    })
}

/// The limit and usage of `/` in a `volume quota NAME list /` answer.
fn parse_quota(answer: &Answer) -> Result<(Option<u64>, Option<u64>)> {
    let doc = answer.doc()?;
    let Some(limit) = doc
        .descendants()
        .find(|n| n.has_tag_name("limit") && child_text(*n, "path").map(str::trim) == Some("/"))
    else {
        return Ok((None, None));
    };
    let number = |tag: &str| child_text(limit, tag).and_then(|t| t.trim().parse::<u64>().ok());
    Ok((number("hard_limit"), number("used_space")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(xml: &str) -> Answer {
        Answer {
            xml: xml.to_string(),
        }
    }

    /// `gluster --xml volume info moon-test` of gluster 10.3, cut to what is read.
    const INFO: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/><volInfo><volumes><volume>
  <name>moon-test</name><id>0c8f0192-e209-4320-af98-c808854d21fe</id>
  <status>1</status><statusStr>Started</statusStr><brickCount>1</brickCount>
  <bricks><brick uuid="79bc">vm:/beds/brick<name>vm:/beds/brick</name><hostUuid>79bc</hostUuid><isArbiter>0</isArbiter></brick></bricks>
  <optCount>2</optCount><options>
    <option><name>features.quota</name><value>on</value></option>
    <option><name>nfs.disable</name><value>on</value></option>
  </options>
</volume><count>1</count></volumes></volInfo></cliOutput>"#;

    #[test]
    fn volume_info_gives_bricks_state_and_quota() {
        let info = parse_info(&answer(INFO), "moon-test").unwrap();
        assert_eq!(info.bricks, ["vm:/beds/brick"]);
        assert!(info.started && info.quota_enabled);
        assert_eq!((info.size_limit, info.used), (None, None));

        let stopped = INFO
            .replace("<status>1</status>", "<status>2</status>")
            .replace("features.quota", "features.inode-quota");
        let info = parse_info(&answer(&stopped), "moon-test").unwrap();
        assert!(!info.started && !info.quota_enabled);
        assert!(
            parse_info(&answer(INFO), "other")
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn quota_lists_give_the_limit_and_usage_of_the_root() {
        let set = r#"<cliOutput><opRet>0</opRet><volQuota><limit><path>/</path>
            <hard_limit>2097152</hard_limit><soft_limit_percent>80%</soft_limit_percent>
            <used_space>131072</used_space></limit></volQuota></cliOutput>"#;
        assert_eq!(
            parse_quota(&answer(set)).unwrap(),
            (Some(2_097_152), Some(131_072))
        );
        // Quota on, no limit yet: gluster 10 says N/A.
        let unset = r#"<cliOutput><opRet>0</opRet><volQuota><limit><path>/</path>
            <hard_limit>N/A</hard_limit><used_space>0</used_space></limit></volQuota></cliOutput>"#;
        assert_eq!(parse_quota(&answer(unset)).unwrap(), (None, Some(0)));
        let other = r#"<cliOutput><volQuota><limit><path>/data</path>
            <hard_limit>5</hard_limit></limit></volQuota></cliOutput>"#;
        assert_eq!(parse_quota(&answer(other)).unwrap(), (None, None));
    }

    #[test]
    fn refusals_keep_their_meaning() {
        let of = |message: &str| {
            refused(
                "vol-a",
                Refusal {
                    message: message.to_string(),
                },
            )
        };
        assert!(of("Volume vol-a does not exist").is_not_found());
        for transient in [
            "Connection failed. Please check if gluster daemon is operational.",
            "Commit failed on localhost. Please check log file for details.",
            "Another transaction is in progress for vol-a. Please try again after some time.",
        ] {
            assert!(
                matches!(of(transient), Error::Unavailable { ref backend, .. } if backend == "gluster"),
                "{transient}"
            );
        }
        match of("/beds/brick is already part of a volume") {
            Error::PreconditionFailed { path, message } => {
                assert_eq!(path, "vol-a");
                assert!(message.contains("already part of a volume"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn loopback_brick_hosts_and_relative_brick_roots_are_refused() {
        for host in ["localhost", "127.0.0.1", "127.0.1.1", "::1", ""] {
            assert!(
                matches!(
                    GlusterVolumes::new(host, "/bricks", VolumesOptions::default()),
                    Err(Error::PreconditionFailed { .. })
                ),
                "{host}"
            );
        }
        assert!(GlusterVolumes::new("g1", "bricks", VolumesOptions::default()).is_err());
        let volumes = GlusterVolumes::new("g1", "/bricks", VolumesOptions::default()).unwrap();
        assert_eq!(volumes.brick("tenant-a"), "g1:/bricks/tenant-a");
    }

    #[tokio::test]
    async fn names_gluster_would_refuse_never_reach_the_cli() {
        // A CLI that does not exist: any call that got that far would be Unavailable.
        let options = VolumesOptions {
            program: PathBuf::from("/nonexistent/gluster"),
            ..VolumesOptions::default()
        };
        let volumes = GlusterVolumes::new("g1", "/bricks", options).unwrap();
        for name in ["", "../etc", "a/b", "-x", "a.b"] {
            assert!(
                matches!(
                    volumes.create(name, 1).await,
                    Err(Error::InvalidPath { .. })
                ),
                "{name}"
            );
            assert!(
                matches!(volumes.delete(name).await, Err(Error::InvalidPath { .. })),
                "{name}"
            );
        }
        match volumes.list().await {
            Err(Error::Unavailable { message, .. }) => {
                assert!(message.contains("not installed"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
