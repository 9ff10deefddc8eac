//! The command line, as clap derive definitions only. `main` parses it; `cmd::*` act on it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Why did my ECS task stop, and which IAM principal (if any) needs the fix?
#[derive(Debug, Parser)]
#[command(name = "ecsdoctor", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// When to color text output: auto = only when stdout is a terminal and NO_COLOR is unset.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

/// Exit codes, shown in `--help`.
pub const EXIT_CODES: &str = "Exit codes: 0 a verdict was reached; 1 inconclusive (nothing matched) or `rules test` failed; 2 usage, bad input or rule-file error; 3 AWS could not be read.";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose a stopped task, live from AWS or from a bundle of AWS CLI output (--from).
    Why(WhyArgs),
    /// Diagnose a pasted stoppedReason or log excerpt (TEXT, or standard input).
    Explain(ExplainArgs),
    /// Save a task's evidence as a bundle (the files the AWS CLI prints) for replay with `why --from`.
    Capture(CaptureArgs),
    /// Diagnose every stopped task of a cluster or service, grouped by cause.
    Scan(ScanArgs),
    /// Run as an AWS Lambda function that posts each stopped task's verdict to chat or SNS.
    ///
    /// The binary is the function's custom runtime (provided.al2023): each invocation diagnoses
    /// one EventBridge "ECS Task State Change" event as `why --event` does and posts the markdown
    /// verdict to a chat webhook and/or an SNS topic. Configured by ECSDOCTOR_* environment
    /// variables; see docs/eventbridge.md.
    Lambda,
    /// List, show and test the rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Evaluate IAM policies locally (the evaluator `why` uses to check its verdicts).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print shell completions.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For a person at a terminal.
    Text,
    /// The stable, versioned contract for scripts and runbooks.
    Json,
    /// For pasting into incident chat or docs.
    Markdown,
}

/// When to color.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// Output options shared by the diagnosing commands.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Extra rule files or folders of *.toml (repeatable); also read from ~/.config/ecsdoctor/rules/.
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Do not redact secrets (keys, tokens, passwords) in evidence.
    #[arg(long)]
    pub no_redact: bool,
    /// Also mask AWS account ids, for pasting outside the company.
    #[arg(long)]
    pub redact_accounts: bool,
    /// Most log lines quoted in text and markdown output.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_evidence: usize,
}

/// How to reach AWS.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// The cluster, for a task id or an old-form task ARN (default: `default`).
    #[arg(long, env = "ECSDOCTOR_CLUSTER")]
    pub cluster: Option<String>,
    /// AWS region (default: the task ARN's, then the configured one).
    #[arg(long)]
    pub region: Option<String>,
    /// Named profile from the AWS config files.
    #[arg(long, env = "AWS_PROFILE", hide_env_values = true)]
    pub profile: Option<String>,
    /// Send AWS requests here (LocalStack, moto); the SDK also honours AWS_ENDPOINT_URL.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Newest log lines read per container.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub log_lines: usize,
    /// Do not read or write the task-definition cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Where task definitions are cached (default: the user cache directory).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

/// `ecsdoctor why`.
#[derive(Debug, Clone, Args)]
pub struct WhyArgs {
    /// The task: an ARN (`arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID`), or an id with --cluster.
    pub task: Option<String>,
    /// Read a bundle instead of AWS: a directory of AWS CLI output, one describe-tasks file, or - for stdin.
    #[arg(long, value_name = "DIR|FILE|-", conflicts_with = "event")]
    pub from: Option<PathBuf>,
    /// Diagnose an EventBridge "ECS Task State Change" event (file, or - for stdin).
    #[arg(long, value_name = "FILE|-")]
    pub event: Option<PathBuf>,
    /// With --event: do not fetch the task definition and logs from AWS.
    #[arg(long, requires = "event")]
    pub offline: bool,
    #[command(flatten)]
    pub verify: VerifyArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Checking the verdict against the account's IAM policies.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Do not read the denied role's policies to check the verdict (live, or from a bundle).
    #[arg(long)]
    pub no_verify: bool,
    /// Also ask IAM's policy simulator (iam:SimulatePrincipalPolicy) and show where it agrees.
    #[arg(long, conflicts_with = "no_verify")]
    pub simulate: bool,
}

/// `ecsdoctor explain`.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The text (a stop reason, container reason and log lines, one per line); read from standard
    /// input when absent.
    pub text: Option<String>,
    /// The task's launch type, when the text cannot tell (EC2 without a task role falls back to
    /// the instance role).
    #[arg(long, value_enum, value_name = "TYPE")]
    pub launch_type: Option<LaunchTypeArg>,
    /// The task ran before it stopped: a denial is then the application's (task role).
    #[arg(long, conflicts_with = "never_started")]
    pub started: bool,
    /// The task never started: a denial is then the ECS agent's (execution role).
    #[arg(long)]
    pub never_started: bool,
    /// The task definition (`aws ecs describe-task-definition` output): its roles, secrets and log
    /// groups.
    #[arg(long, value_name = "FILE")]
    pub task_def: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A launch type on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LaunchTypeArg {
    Ec2,
    Fargate,
    External,
}

impl LaunchTypeArg {
    /// As ECS writes it.
    pub fn ecs_name(self) -> &'static str {
        match self {
            LaunchTypeArg::Ec2 => "EC2",
            LaunchTypeArg::Fargate => "FARGATE",
            LaunchTypeArg::External => "EXTERNAL",
        }
    }
}

/// `ecsdoctor capture`.
#[derive(Debug, Clone, Args)]
pub struct CaptureArgs {
    /// The task ARN (or id with --cluster).
    pub task: String,
    /// The directory to write the bundle into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Do not read (and store) the denied role's policies for offline verification.
    #[arg(long)]
    pub no_verify: bool,
    /// Extra rule files or folders (they decide which role and resource verification reads).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `ecsdoctor scan`.
#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    /// Only tasks of this service.
    #[arg(long, conflicts_with = "family")]
    pub service: Option<String>,
    /// Only tasks of this task definition family.
    #[arg(long)]
    pub family: Option<String>,
    /// Only tasks stopped within this long ago (e.g. 30m, 1h, 2d).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Most tasks examined.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// Offline: scan a describe-tasks file holding many tasks (with a bundle directory layout).
    #[arg(long, value_name = "DIR|FILE")]
    pub from: Option<PathBuf>,
    /// Tasks per distinct failure signature whose logs are read, when the stop reason alone is generic.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub log_samples: usize,
    /// Most AWS requests in flight at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    #[command(flatten)]
    pub verify: VerifyArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `ecsdoctor policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide whether a role (or role session) may perform an action on a resource, from policy
    /// files, with the deciding statement of each layer and the minimal statement that would allow it.
    ///
    /// Policy files are bare policy documents or the AWS CLI's output of get-role-policy,
    /// get-policy-version, get-key-policy, get-repository-policy, get-resource-policy or
    /// get-bucket-policy (URL-encoded documents are decoded). Context keys not given with --context
    /// are absent, as in AWS, and listed in the answer. Exit 0 when the policies decide (allowed or
    /// denied), 1 when the answer is indeterminate, 2 for a bad file or argument.
    Eval(PolicyEvalArgs),
}

/// `ecsdoctor policy eval`.
#[derive(Debug, Clone, Args)]
pub struct PolicyEvalArgs {
    /// The role ARN or assumed-role session ARN making the request.
    #[arg(long, value_name = "ARN")]
    pub principal: String,
    /// The action, as `service:Action` (e.g. ssm:GetParameters).
    #[arg(long, value_name = "ACTION")]
    pub action: String,
    /// The resource ARN, or `*` for actions without resource-level permissions.
    #[arg(long, value_name = "ARN")]
    pub resource: String,
    /// The account owning the resource, when the ARN does not say (S3 buckets) and it is not the
    /// principal's.
    #[arg(long, value_name = "ID")]
    pub resource_account: Option<String>,
    /// An identity-based policy of the principal (inline, or a managed policy's default version);
    /// repeatable.
    #[arg(long, value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// The principal's permissions boundary.
    #[arg(long, value_name = "FILE")]
    pub boundary: Option<PathBuf>,
    /// The resource's resource-based policy (bucket, repository, secret, queue ...).
    #[arg(long, value_name = "FILE")]
    pub resource_policy: Option<PathBuf>,
    /// The KMS key policy, when the action is on a KMS key.
    #[arg(long, value_name = "FILE")]
    pub key_policy: Option<PathBuf>,
    /// A service control policy of the principal's account; repeatable (an Allow in any passes).
    #[arg(long, value_name = "FILE")]
    pub scp: Vec<PathBuf>,
    /// A resource control policy of the resource's account; repeatable.
    #[arg(long, value_name = "FILE")]
    pub rcp: Vec<PathBuf>,
    /// A session policy passed when the role session was created; repeatable.
    #[arg(long, value_name = "FILE")]
    pub session_policy: Vec<PathBuf>,
    /// A request context value, KEY=VALUE (e.g. aws:SourceVpce=vpce-1a2b); repeat a key for several
    /// values.
    #[arg(long, value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// Output format (text or json).
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `ecsdoctor rules ...`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules: id, culprit, category, title.
    List {
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Extra rule files or folders.
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
    },
    /// Show one rule's documentation and examples.
    Show {
        /// The rule id.
        id: String,
        /// Extra rule files or folders.
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
    },
    /// Run every rule's examples and counterexamples (built-in and --rules); exit 1 on a failure.
    Test {
        /// Extra rule files or folders.
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
        /// Test only the rules from --rules, not the built-ins.
        #[arg(long)]
        only_user: bool,
    },
    /// Print the rule catalogue as markdown (docs/rules.md is generated with this).
    Docs,
}
