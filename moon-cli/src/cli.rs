//! The command line, as clap reads it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use moon_core::spec::Quantity;

use crate::exit::EXIT_CODES_HELP;
use crate::output::Format;

const LONG_ABOUT: &str = "\
Run multi-tenant distributed training jobs and inference services.

A tenant is a team's share of the platform, with quotas on CPUs, memory,
GPUs and running jobs. A job belongs to a tenant and runs roles of replicas
under a framework (pytorch, tensorflow, xgboost, mxnet, caffe, spark, custom).
A service runs identical replicas behind one URL, scaled by hand or by load.
The local backend runs every replica as a supervised process on this machine;
its state lives under MOON_HOME (default ~/.moon), or --home.

Commands:
  moon tenant create NAME [--cpus X] [--memory X] [--gpus N] [--jobs N] [--user U]... [--group G]...
  moon tenant apply -f tenant.yaml
  moon tenant ls
  moon tenant get NAME
  moon tenant delete NAME [--force]
  moon job submit -f job.yaml [--wait] [--follow] [--timeout SECS]
  moon job ls [--tenant T]
  moon job get TENANT/NAME
  moon job logs TENANT/NAME [-f] [--tail N] [--replica worker-1]
  moon job events TENANT/NAME [-w]
  moon job cancel TENANT/NAME
  moon job wait TENANT/NAME [--timeout SECS]
  moon job delete TENANT/NAME [--force]
  moon svc create -f service.yaml [--wait] [--timeout SECS]
  moon svc ls [--tenant T]
  moon svc get TENANT/NAME
  moon svc scale TENANT/NAME REPLICAS
  moon svc logs TENANT/NAME [-f] [--tail N] [--replica replica-0]
  moon svc events TENANT/NAME [-w]
  moon svc delete TENANT/NAME
  moon secret create NAME --tenant T (--from-literal KEY=VALUE... | --from-env-file FILE)
  moon secret ls --tenant T
  moon secret delete NAME --tenant T
  moon validate -f spec.yaml
  moon gpu ls
  moon gpu labels
  moon fs ls URL [-r] [-l]
  moon fs cat URL...
  moon fs cp SRC DST [-r]
  moon fs rm URL... [-r]
  moon fs du URL...

A job or service may also be named as NAME with --tenant T. `-f -` reads the spec from
stdin; specs are YAML or JSON.

Output is a table by default; -o json and -o yaml print moon's own status
structs (JSON lines, or one YAML document each, for logs and events).
Errors go to stderr as `error: <message>`.";

/// `moon`: tenants and training jobs on a moon backend.
#[derive(Debug, Parser)]
#[command(
    name = "moon",
    version,
    about = "Run multi-tenant distributed training jobs and inference services",
    long_about = LONG_ABOUT,
    after_help = EXIT_CODES_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Output format.
    #[arg(short, long, value_enum, global = true, default_value_t = Format::Table)]
    pub output: Format,

    /// Where the local backend keeps its state; overrides MOON_HOME (default ~/.moon).
    #[arg(long, global = true, value_name = "PATH")]
    pub home: Option<PathBuf>,

    /// Where jobs run: "local" (this machine) or "kubernetes".
    #[arg(
        long,
        global = true,
        env = "MOON_BACKEND",
        default_value = "local",
        value_name = "NAME"
    )]
    pub backend: String,

    /// The kubeconfig of the kubernetes backend (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, env = "MOON_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context of the kubernetes backend (default: its current context).
    #[arg(long, global = true, env = "MOON_KUBE_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// The container image of replicas whose spec names none (kubernetes
    /// backend and `render`; default: MOON_IMAGE, else moon's).
    #[arg(long, global = true, value_name = "IMAGE")]
    pub image: Option<String>,

    /// A taint every replica's pod tolerates, as `kubectl taint` writes it
    /// (`key[=value]:Effect`); repeatable; replaces MOON_TOLERATIONS.
    #[arg(long = "toleration", global = true, value_name = "TAINT")]
    pub tolerations: Vec<String>,

    /// A node label every replica's pod asks for (`key=value`); repeatable;
    /// replaces MOON_NODE_SELECTOR.
    #[arg(long = "node-selector", global = true, value_name = "LABEL")]
    pub node_selector: Vec<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, update and inspect tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Submit, inspect, follow and cancel jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Serve, scale and inspect inference services.
    #[command(subcommand, visible_alias = "service")]
    Svc(ServiceCommand),
    /// Store a tenant's secrets, which roles name in envFrom.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Check a job or tenant spec without submitting it.
    #[command(long_about = "\
Check a job or tenant spec without submitting it.

The kind is detected: a mapping with `roles`, `tenant` or `framework` is a job, anything else a tenant.
Prints \"valid\", or every broken rule (one per line) and exits 2.")]
    Validate(FileArg),
    /// Print the Kubernetes objects a job or tenant spec becomes, without applying them.
    #[command(long_about = "\
Print the Kubernetes objects a job or tenant spec becomes, without applying them.

The output is a YAML stream for `kubectl apply -f -` or a GitOps repository.
Objects carry no owner references (they need the UID of an object that does not
exist yet); `kubectl delete jobs,services,configmaps -l moon.dev/job=NAME -n TENANT`
removes a rendered job.")]
    Render(RenderArgs),
    /// This machine's GPUs: inventory, health and node labels.
    #[command(subcommand)]
    Gpu(GpuCommand),
    /// List, read, copy and remove objects in stores (local, SeaweedFS, HDFS, ...).
    #[command(long_about = FS_ABOUT)]
    Fs(FsArgs),
    /// Ask network policies who may reach whom, and which rule says so.
    #[command(subcommand)]
    Net(NetCommand),
}

/// `moon net ...`
#[derive(Debug, Subcommand)]
pub enum NetCommand {
    /// May one pod (or address) reach another on a port? With the deciding rule.
    #[command(long_about = "\
May one pod (or address) reach another on a port? With the deciding rule.

Policies are Kubernetes NetworkPolicies and Calico projectcalico.org/v3 policies,
network sets and tiers, in YAML streams (`---` between objects, or a List).
Pods, namespaces and service accounts come from --pods (a YAML mapping with
`namespaces`, `pods` and `serviceAccounts`, as docs/network.md shows).
Exits 0 when allowed, 1 when denied, 2 on invalid input.")]
    Check(NetCheckArgs),
    /// Who may reach a tenant's pods: a table, every pod to each of the tenant's.
    Matrix(NetMatrixArgs),
}

/// Where the policies and pods come from.
#[derive(Debug, Args)]
pub struct NetInputs {
    /// Policies, YAML or JSON (repeat for more files; `-` reads stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The pods, namespaces and service accounts, YAML or JSON.
    #[arg(long, value_name = "FILE")]
    pub pods: PathBuf,
    /// The destination port.
    #[arg(long)]
    pub port: u16,
    /// tcp, udp or sctp.
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
}

/// `moon net check` arguments.
#[derive(Debug, Args)]
pub struct NetCheckArgs {
    /// The source: NAMESPACE/POD or an IP address.
    #[arg(long)]
    pub from: String,
    /// The destination: NAMESPACE/POD or an IP address.
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub inputs: NetInputs,
}

/// `moon net matrix` arguments.
#[derive(Debug, Args)]
pub struct NetMatrixArgs {
    /// The tenant (namespace) whose pods are the columns.
    pub tenant: String,
    #[command(flatten)]
    pub inputs: NetInputs,
}

const FS_ABOUT: &str = "\
List, read, copy and remove objects in stores.

Every argument is a store URL (docs/storage.md): file:///abs/dir/x,
seaweedfs://filer:8888/dir/x[?master=host:9333], hdfs://namenode:8020/dir/x,
memory://NAME/x; a plain path (./model.bin) is a local file. A URL names an
object or a prefix: seaweedfs://filer:8888/runs names every object whose path
starts with runs/. Copies stream between any two backends; a copy appears at
its destination whole or not at all. Exit codes: 3 no such object or prefix,
2 a malformed URL or path, 5 refused (permission, quota), 6 a server that
cannot be reached.

With --tenant T, URLs of the platform's SeaweedFS, HDFS and GlusterFS are
opened through tenant T's storage: anything outside its directory, home or
volume is refused (exit 5) before a server is contacted. Local files stay
reachable, to copy data in and out.";

/// `moon fs [--tenant T] ...`.
#[derive(Debug, clap::Args)]
pub struct FsArgs {
    /// Open the platform's stores as this tenant's: outside its part, refused.
    #[arg(long, global = true, value_name = "TENANT")]
    pub tenant: Option<String>,
    #[command(subcommand)]
    pub command: FsCommand,
}

/// `moon fs ...`: objects in stores, by URL.
#[derive(Debug, Subcommand)]
pub enum FsCommand {
    /// List one level below a prefix: objects, and deeper prefixes ending in `/`.
    #[command(visible_alias = "list")]
    Ls {
        /// The prefix (or object) to list.
        url: String,
        /// List every object below, recursively, rather than one level.
        #[arg(short, long)]
        recursive: bool,
        /// Show sizes and modification times.
        #[arg(short, long)]
        long: bool,
    },
    /// Write objects' contents to stdout.
    Cat {
        /// The objects, in order.
        #[arg(required = true)]
        urls: Vec<String>,
    },
    /// Copy an object (or, with -r, every object below a prefix) to another store.
    #[command(long_about = "\
Copy an object (or, with -r, every object below a prefix) to another store.

Without -r, SRC is an object and DST the object to write; a DST ending in `/`
(or naming a store's root) receives SRC under its own name. With -r, every
object below the prefix SRC is copied to the same path below the prefix DST.
A progress bar is drawn on stderr for large copies when it is a terminal.")]
    Cp {
        /// What to copy.
        src: String,
        /// Where to.
        dst: String,
        /// Copy every object below the prefix SRC.
        #[arg(short, long)]
        recursive: bool,
        /// How many objects of a recursive copy are in flight at once.
        #[arg(long, default_value_t = 8, value_name = "N")]
        concurrency: usize,
    },
    /// Remove objects (with -r, every object below a prefix).
    #[command(visible_alias = "delete")]
    Rm {
        /// The objects (or prefixes, with -r).
        #[arg(required = true)]
        urls: Vec<String>,
        /// Remove every object below each prefix (a store's whole root is refused).
        #[arg(short, long)]
        recursive: bool,
    },
    /// Count the objects and bytes below prefixes.
    Du {
        /// The prefixes (or objects).
        #[arg(required = true)]
        urls: Vec<String>,
    },
}

/// `moon gpu ...`: this machine's GPUs, whatever --backend says.
#[derive(Debug, Subcommand)]
pub enum GpuCommand {
    /// List this machine's GPUs with their health.
    #[command(
        visible_alias = "list",
        long_about = "\
List this machine's GPUs with their health.

The GPUs come from NVML, or from the file MOON_GPU_INVENTORY names (YAML or
JSON, in the schema `-o yaml` prints), for machines without NVIDIA's driver.
The table shows each device's first health reason; -o json and -o yaml print
the whole inventory: the driver, every device's telemetry and error counters,
and every reason. Without NVML and without MOON_GPU_INVENTORY, exits 7."
    )]
    Ls,
    /// Print the node labels of this machine's GPUs, for a node labeller.
    #[command(long_about = "\
Print the node labels of this machine's GPUs, for a node labeller.

The labels NVIDIA's GPU Feature Discovery puts on a node (nvidia.com/gpu.product,
nvidia.com/gpu.count, nvidia.com/gpu.memory, nvidia.com/cuda.driver.major, ...)
and moon's own moon.dev/gpu-health (the worst device's health) and
moon.dev/gpu-healthy-count, as key=value lines (-o json: one object).")]
    Labels,
}

/// `moon render` arguments.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The spec, YAML or JSON; `-` reads stdin. The image, tolerations and
    /// node selector are the global flags'.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
}

/// `moon secret ...`
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create a tenant's secret, or replace all its keys.
    #[command(long_about = "\
Create a tenant's secret, or replace all its keys.

A role that names the secret in `envFrom: [{secret: NAME}]` gets each key as
a variable. Values are never printed; --from-literal puts them on the command
line (and in the shell's history), --from-env-file (KEY=VALUE lines, `-` for
stdin) does not. Locally the secret is a file only its owner can read under
MOON_HOME/secrets; on Kubernetes, a Secret in the tenant's namespace.
Prints whether it was created, updated or unchanged.")]
    Create(SecretCreateArgs),
    /// List a tenant's secrets and their keys (never their values).
    #[command(visible_alias = "list")]
    Ls {
        /// The tenant.
        #[arg(short, long, value_name = "TENANT")]
        tenant: String,
    },
    /// Delete a tenant's secret.
    #[command(visible_alias = "rm")]
    Delete {
        /// The secret's name.
        name: String,
        /// The tenant.
        #[arg(short, long, value_name = "TENANT")]
        tenant: String,
    },
}

/// Flags of `moon secret create`.
#[derive(Debug, Args)]
pub struct SecretCreateArgs {
    /// The secret's name (a DNS label).
    pub name: String,
    /// The tenant.
    #[arg(short, long, value_name = "TENANT")]
    pub tenant: String,
    /// A key and its value (repeatable). Read as text, never echoed, even in errors.
    #[arg(long = "from-literal", value_name = "KEY=VALUE")]
    pub literals: Vec<String>,
    /// A file of KEY=VALUE lines; `-` reads stdin.
    #[arg(
        long = "from-env-file",
        value_name = "FILE",
        conflicts_with = "literals"
    )]
    pub env_file: Option<PathBuf>,
}

/// `moon tenant ...`
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant from flags, or replace the spec of an existing one.
    #[command(long_about = "\
Create a tenant from flags, or replace the spec of an existing one.

Limits left out are unlimited. Prints whether the tenant was created, updated or unchanged.")]
    Create(TenantCreateArgs),
    /// Create or update a tenant from a spec file; prints created, updated or unchanged.
    Apply(FileArg),
    /// List tenants with their usage against their quotas.
    #[command(
        visible_alias = "list",
        long_about = "\
List tenants with their usage against their quotas.

Each resource column reads USED/LIMIT; a limit of - is unlimited."
    )]
    Ls,
    /// Show one tenant: its spec and what its jobs hold now.
    Get {
        /// The tenant's name.
        name: String,
    },
    /// Delete a tenant and all its jobs, logs and records included.
    #[command(long_about = "\
Delete a tenant and all its jobs, logs and records included, so that its name
can be used again.

A tenant with jobs still pending or running is refused (exit 5) unless
--force, which cancels them and waits for them to end first.")]
    Delete {
        /// The tenant's name.
        name: String,
        /// Cancel its unfinished jobs and wait for them to end, rather than refuse.
        #[arg(long)]
        force: bool,
    },
}

/// Flags of `moon tenant create`.
#[derive(Debug, Args)]
pub struct TenantCreateArgs {
    /// The tenant's name (a DNS label).
    pub name: String,
    /// CPUs its running jobs may hold at once: 4, 0.5 or 500m.
    #[arg(long, value_parser = parse_quantity, value_name = "CPUS")]
    pub cpus: Option<Quantity>,
    /// Memory its running jobs may hold at once: 8Gi, 512Mi, bytes.
    #[arg(long, value_parser = parse_quantity, value_name = "BYTES")]
    pub memory: Option<Quantity>,
    /// GPUs its running jobs may hold at once.
    #[arg(long, value_name = "N")]
    pub gpus: Option<u64>,
    /// Jobs it may run at once.
    #[arg(long, value_name = "N")]
    pub jobs: Option<u64>,
    /// A user granted access (repeatable).
    #[arg(long = "user", value_name = "USER")]
    pub users: Vec<String>,
    /// A group granted access (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
}

/// `-f FILE`, for commands that read one spec.
#[derive(Debug, Args)]
pub struct FileArg {
    /// The spec, YAML or JSON; `-` reads stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
}

/// `moon job ...`
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit a job; with --wait or --follow, stay until it ends.
    #[command(long_about = "\
Submit a job; with --wait or --follow, stay until it ends.

Without either, prints the job's status as submitted and returns at once.
--wait waits for the job to end, showing its phase changes on stderr when
that is a terminal. --follow streams every replica's output, each line
prefixed with its replica ([worker-0] ...), until the job ends. Either way
the exit code then says how the job ended: 0 succeeded, 1 failed or
cancelled, 4 still running after --timeout.")]
    Submit(SubmitArgs),
    /// List jobs, oldest first.
    #[command(visible_alias = "list")]
    Ls {
        /// Only this tenant's jobs.
        #[arg(short, long, value_name = "TENANT")]
        tenant: Option<String>,
    },
    /// Show one job and its replicas.
    Get(NameRef),
    /// Print the output of a job's replicas.
    #[command(long_about = "\
Print the output of a job's replicas, each line prefixed with its replica
([worker-0] ...) unless --replica picks one. Replica stderr goes to stderr.")]
    Logs(LogsArgs),
    /// Print what happened to a job.
    Events(EventsArgs),
    /// Stop a job: SIGTERM to every replica, SIGKILL after the grace period.
    Cancel(NameRef),
    /// Wait for a job to end; exits 1 if it ended Failed or Cancelled.
    Wait(WaitArgs),
    /// Delete a job with its logs and records, so that its name can be used again.
    #[command(long_about = "\
Delete a job with its logs and records, so that its name can be used again.

A job still pending or running is refused (exit 5) unless --force, which
cancels it and waits for it to end first. Watchers and log followers of the
job stop.")]
    Delete(DeleteArgs),
}

/// Flags of `moon job delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The job.
    #[command(flatten)]
    pub job: NameRef,
    /// Cancel the job if it has not ended and wait for its end, rather than refuse.
    #[arg(long)]
    pub force: bool,
}

/// A job or service, as `TENANT/NAME` or as `NAME --tenant TENANT`.
#[derive(Debug, Args)]
pub struct NameRef {
    /// TENANT/NAME, or NAME with --tenant.
    #[arg(value_name = "TENANT/NAME")]
    pub name: String,
    /// The tenant, when given just a name.
    #[arg(short, long, value_name = "TENANT")]
    pub tenant: Option<String>,
}

/// `moon svc ...`: inference services.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Serve a service, or apply a changed replica count to a running one.
    #[command(long_about = "\
Serve a service, or apply a changed replica count to a running one.

Prints `service TENANT/NAME created`, `updated` (only the replica count
differed: it scaled) or `unchanged`. With --wait, stays until every replica
is ready and prints the service's URL.")]
    Create(ServeArgs),
    /// List services, of one tenant or all.
    #[command(visible_alias = "list")]
    Ls {
        /// Only this tenant's services.
        #[arg(short, long, value_name = "TENANT")]
        tenant: Option<String>,
    },
    /// A service's URL and phase, then a table of its replicas.
    Get(NameRef),
    /// Set a service's replica count (an autoscaled one keeps it until its next decision).
    Scale {
        /// The service.
        #[command(flatten)]
        service: NameRef,
        /// Replicas to have; 0 stops them all and keeps the URL.
        #[arg(value_name = "REPLICAS")]
        replicas: u32,
    },
    /// Print the replicas' output, each line prefixed with its replica.
    Logs(LogsArgs),
    /// Print a service's events: replicas started and exited, scaling, cold starts.
    Events(EventsArgs),
    /// Stop a service's replicas and close its URL.
    #[command(visible_alias = "rm")]
    Delete(NameRef),
}

/// Flags of `moon svc create`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The service spec, YAML or JSON; `-` reads stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Wait until every replica is ready, then print the URL.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds (exit 4); the service keeps running.
    #[arg(long, value_parser = parse_seconds, value_name = "SECS")]
    pub timeout: Option<Duration>,
}

/// Flags of `moon job submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The job spec, YAML or JSON; `-` reads stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Wait for the job to end; exit 1 if it fails or is cancelled.
    #[arg(long)]
    pub wait: bool,
    /// Stream the replicas' output until the job ends, then report as --wait does.
    #[arg(long)]
    pub follow: bool,
    /// Give up waiting after this many seconds (exit 4); the job keeps running.
    #[arg(long, value_parser = parse_seconds, value_name = "SECS")]
    pub timeout: Option<Duration>,
}

/// Flags of `moon job logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The job or service.
    #[command(flatten)]
    pub target: NameRef,
    /// Keep printing new output until the job ends (a service: until it is deleted).
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each replica's output so far.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only this replica (worker-1, replica-0); its lines are not prefixed.
    #[arg(long, value_name = "REPLICA")]
    pub replica: Option<String>,
}

/// Flags of `moon job events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The job or service.
    #[command(flatten)]
    pub target: NameRef,
    /// Keep printing new events until the job ends (a service: until it is deleted).
    #[arg(short, long)]
    pub watch: bool,
}

/// Flags of `moon job wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The job.
    #[command(flatten)]
    pub job: NameRef,
    /// Give up after this many seconds (exit 4).
    #[arg(long, value_parser = parse_seconds, value_name = "SECS")]
    pub timeout: Option<Duration>,
}

/// A quantity as YAML would read it, so that `--cpus 2` is stored as the
/// number 2, exactly as `cpus: 2` in a spec file, and applying either after
/// the other reports "unchanged". Bad values are left to validation, which
/// words the error as it does for spec files.
fn parse_quantity(text: &str) -> Result<Quantity, String> {
    match serde_yaml_ng::from_str::<Quantity>(text) {
        Ok(quantity) => Ok(quantity),
        Err(_) => Ok(Quantity::Text(text.to_string())),
    }
}

/// Seconds as a non-negative number, fractions allowed.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a number of seconds, got {text:?}"))?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("expected a non-negative number of seconds, got {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn quantities_read_as_in_specs() {
        assert_eq!(parse_quantity("2"), Ok(Quantity::Int(2)));
        assert_eq!(parse_quantity("0.5"), Ok(Quantity::Float(0.5)));
        assert_eq!(parse_quantity("500m"), Ok(Quantity::from("500m")));
        assert_eq!(parse_quantity("8Gi"), Ok(Quantity::from("8Gi")));
    }

    #[test]
    fn seconds_must_be_a_non_negative_number() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("inf").is_err());
    }

    #[test]
    fn usage_errors_exit_2() {
        let error = Cli::try_parse_from(["moon", "job", "submit"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(error.exit_code(), 2);
        let error = Cli::try_parse_from(["moon", "-o", "xml", "tenant", "ls"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli =
            Cli::try_parse_from(["moon", "job", "ls", "-o", "json", "--home", "/tmp/m"]).unwrap();
        assert_eq!(cli.output, Format::Json);
        assert_eq!(cli.home, Some(PathBuf::from("/tmp/m")));
    }

    #[test]
    fn gpu_commands_parse() {
        let cli = Cli::try_parse_from(["moon", "gpu", "list", "-o", "json"]).unwrap();
        assert!(matches!(cli.command, Command::Gpu(GpuCommand::Ls)));
        let cli = Cli::try_parse_from(["moon", "gpu", "labels"]).unwrap();
        assert!(matches!(cli.command, Command::Gpu(GpuCommand::Labels)));
    }

    #[test]
    fn fs_commands_parse() {
        let cli =
            Cli::try_parse_from(["moon", "fs", "ls", "-rl", "memory://x", "-o", "json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Fs(FsArgs {
                tenant: None,
                command: FsCommand::Ls {
                    recursive: true,
                    long: true,
                    ..
                }
            })
        ));
        let cli = Cli::try_parse_from(["moon", "fs", "cp", "-r", "a", "b", "--tenant", "vision"])
            .unwrap();
        let Command::Fs(FsArgs {
            tenant: Some(tenant),
            command:
                FsCommand::Cp {
                    src,
                    dst,
                    recursive,
                    concurrency,
                },
        }) = cli.command
        else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(
            (src.as_str(), dst.as_str(), recursive, concurrency),
            ("a", "b", true, 8)
        );
        assert_eq!(tenant, "vision");
        let error = Cli::try_parse_from(["moon", "fs", "rm"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn delete_commands_take_force() {
        let cli = Cli::try_parse_from(["moon", "job", "delete", "x", "--tenant", "t", "--force"])
            .unwrap();
        let Command::Job(JobCommand::Delete(args)) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert!(args.force);
        assert_eq!(args.job.tenant.as_deref(), Some("t"));
        let cli = Cli::try_parse_from(["moon", "tenant", "delete", "t"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Tenant(TenantCommand::Delete { force: false, .. })
        ));
    }

    #[test]
    fn tenant_create_takes_repeated_users() {
        let cli = Cli::try_parse_from([
            "moon", "tenant", "create", "vision", "--cpus", "2", "--user", "ann", "--user", "bo",
            "--group", "ml",
        ])
        .unwrap();
        let Command::Tenant(TenantCommand::Create(args)) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.cpus, Some(Quantity::Int(2)));
        assert_eq!(args.users, ["ann", "bo"]);
        assert_eq!(args.groups, ["ml"]);
    }
}
