//! The frameworks moon wires up, and the one table of which roles each allows.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A training framework.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    /// `torch.distributed`: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK.
    Pytorch,
    /// TensorFlow's TF_CONFIG.
    Tensorflow,
    /// XGBoost's collective, with a tracker run by moon.
    Xgboost,
    /// MXNet's parameter server: DMLC_* variables.
    Mxnet,
    /// Caffe: one process.
    Caffe,
    /// Spark: a driver and its executors.
    Spark,
    /// Anything: no role rules and no rendezvous beyond moon's common variables.
    Custom,
}

/// What a framework allows of one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleRule {
    /// The role's name.
    pub name: &'static str,
    /// Whether a job of the framework must have this role.
    pub required: bool,
    /// Fewest replicas when the role is present.
    pub min_replicas: u32,
    /// Most replicas, if bounded.
    pub max_replicas: Option<u32>,
    /// Whether the job's success waits for this role's replicas; the others
    /// (parameter servers, schedulers, executors) are stopped once it succeeds.
    pub decides_success: bool,
}

const fn rule(
    name: &'static str,
    required: bool,
    min: u32,
    max: Option<u32>,
    decides: bool,
) -> RoleRule {
    RoleRule {
        name,
        required,
        min_replicas: min,
        max_replicas: max,
        decides_success: decides,
    }
}

/// The table, documented in the README's "Frameworks" section.
///
/// | framework  | role      | replicas        | decides success |
/// |------------|-----------|-----------------|-----------------|
/// | pytorch    | master    | exactly 1       | yes             |
/// | pytorch    | worker    | any             | yes             |
/// | tensorflow | chief     | at most 1       | yes             |
/// | tensorflow | worker    | any             | yes             |
/// | tensorflow | ps        | any             | no              |
/// | tensorflow | evaluator | at most 1       | no              |
/// | xgboost    | worker    | at least 1      | yes             |
/// | mxnet      | scheduler | exactly 1       | no              |
/// | mxnet      | server    | at least 1      | no              |
/// | mxnet      | worker    | at least 1      | yes             |
/// | caffe      | worker    | exactly 1       | yes             |
/// | spark      | driver    | exactly 1       | yes             |
/// | spark      | executor  | any             | no              |
/// | custom     | any name  | any             | yes             |
const PYTORCH: &[RoleRule] = &[
    rule("master", true, 1, Some(1), true),
    rule("worker", false, 1, None, true),
];
const TENSORFLOW: &[RoleRule] = &[
    rule("chief", false, 1, Some(1), true),
    rule("worker", false, 1, None, true),
    rule("ps", false, 1, None, false),
    rule("evaluator", false, 1, Some(1), false),
];
const XGBOOST: &[RoleRule] = &[rule("worker", true, 1, None, true)];
const MXNET: &[RoleRule] = &[
    rule("scheduler", true, 1, Some(1), false),
    rule("server", true, 1, None, false),
    rule("worker", true, 1, None, true),
];
const CAFFE: &[RoleRule] = &[rule("worker", true, 1, Some(1), true)];
const SPARK: &[RoleRule] = &[
    rule("driver", true, 1, Some(1), true),
    rule("executor", false, 1, None, false),
];

impl Framework {
    /// Every framework, in the order the docs list them.
    pub const ALL: [Framework; 7] = [
        Framework::Pytorch,
        Framework::Tensorflow,
        Framework::Xgboost,
        Framework::Mxnet,
        Framework::Caffe,
        Framework::Spark,
        Framework::Custom,
    ];

    /// The roles this framework allows; `None` for `custom`, which allows any.
    pub fn role_rules(self) -> Option<&'static [RoleRule]> {
        match self {
            Framework::Pytorch => Some(PYTORCH),
            Framework::Tensorflow => Some(TENSORFLOW),
            Framework::Xgboost => Some(XGBOOST),
            Framework::Mxnet => Some(MXNET),
            Framework::Caffe => Some(CAFFE),
            Framework::Spark => Some(SPARK),
            Framework::Custom => None,
        }
    }

    /// The rule for one role, if the framework names it.
    pub fn role_rule(self, role: &str) -> Option<&'static RoleRule> {
        self.role_rules()?.iter().find(|rule| rule.name == role)
    }

    /// Whether replicas of `role` must succeed for the job to succeed.
    pub fn decides_success(self, role: &str) -> bool {
        self.role_rule(role).is_none_or(|rule| rule.decides_success)
    }

    /// The name used in specs (`pytorch`).
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::Pytorch => "pytorch",
            Framework::Tensorflow => "tensorflow",
            Framework::Xgboost => "xgboost",
            Framework::Mxnet => "mxnet",
            Framework::Caffe => "caffe",
            Framework::Spark => "spark",
            Framework::Custom => "custom",
        }
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
