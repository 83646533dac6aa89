//! The spec and quantity parsers on any input: a value or a typed error
//! that names a rule and a place in the spec, never a panic or an
//! overflow; and a valid spec written out as JSON or YAML reads back as the
//! same spec.

use std::collections::BTreeMap;

use moon_spec::Error;
use moon_spec::error::{PathPart, rule};
use moon_spec::gpu::GpuSelector;
use moon_spec::spec::{
    EnvFrom, Framework, Gpus, Job, Kind, Quantity, RestartPolicy, Role, Spec, Tenant, TenantQuota,
    job_from_yaml, spec_from_yaml, tenant_from_yaml, validate_job, validate_tenant,
};
use proptest::prelude::*;
use serde_json::Value;

static RULES: [&str; 9] = [
    rule::REQUIRED,
    rule::UNKNOWN_FIELD,
    rule::TYPE,
    rule::FORMAT,
    rule::RANGE,
    rule::UNIQUE,
    rule::FRAMEWORK,
    rule::UNSUPPORTED,
    rule::SYNTAX,
];

/// The keys of job and tenant specs, so that generated mappings reach past
/// "unknown field" into the rules of each field.
static KEYS: [&str; 26] = [
    "kind",
    "name",
    "tenant",
    "framework",
    "roles",
    "restartPolicy",
    "backoffLimit",
    "image",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "labels",
    "replicas",
    "command",
    "args",
    "env",
    "inheritEnv",
    "envFrom",
    "secret",
    "workingDir",
    "cpus",
    "memory",
    "gpus",
    "quota",
    "users",
    "groups",
    "jobs",
];

/// Mappings whose keys are the user's (`FieldError::location` keeps their
/// dots), given keys with dots and slashes.
static FREE_MAPS: [&str; 2] = ["env", "labels"];

/// Strings that mean something somewhere in a spec.
static WORDS: [&str; 34] = [
    "Job",
    "Tenant",
    "job",
    "pytorch",
    "tensorflow",
    "xgboost",
    "mxnet",
    "caffe",
    "spark",
    "custom",
    "never",
    "on-failure",
    "master",
    "worker",
    "chief",
    "ps",
    "scheduler",
    "server",
    "driver",
    "500m",
    "0.5",
    "8Gi",
    "512Mi",
    "1e400",
    "9999999999Pi",
    "-1",
    "H100:2",
    "80GB+:1",
    "0.5GB+:1",
    "1e300GB+:1",
    "cc9.0+:8",
    "",
    "~",
    "NaN",
];

// ----------------------------------------------------------------- checks

/// An outcome of parsing `input`: a value, or an `InvalidSpec` of `kinds`
/// whose every error names a known rule and a path that leads to a place in
/// `input` when it is given (text generated from a value).
fn check<T>(
    outcome: Result<T, Error>,
    kinds: &[&str],
    input: Option<&Value>,
    text: &str,
) -> Result<(), TestCaseError> {
    let errors = match outcome {
        Ok(_) => return Ok(()),
        Err(Error::InvalidSpec { kind, errors }) => {
            prop_assert!(kinds.contains(&kind), "kind {kind:?} for {text:?}");
            errors.0
        }
        Err(other) => {
            return Err(TestCaseError::fail(format!(
                "not an InvalidSpec: {other:?} for {text:?}"
            )));
        }
    };
    prop_assert!(
        !errors.is_empty(),
        "an InvalidSpec without errors for {text:?}"
    );
    for error in errors {
        prop_assert!(
            RULES.contains(&error.rule.as_str()),
            "unknown rule {:?} in {error} for {text:?}",
            error.rule
        );
        prop_assert!(!error.message.is_empty(), "no message at {:?}", error.path);
        let location = error.location();
        prop_assert_eq!(location.is_empty(), error.path.is_empty(), "{}", error.path);
        if let Some(input) = input {
            prop_assert!(
                leads_somewhere(input, &location),
                "{:?} is no place in {input} ({error})",
                error.path
            );
        }
    }
    Ok(())
}

/// Whether every step of `location` exists in `value`.
fn leads_somewhere(mut value: &Value, location: &[PathPart<'_>]) -> bool {
    for part in location {
        let next = match (part, value) {
            (PathPart::Key(key), Value::Object(map)) => map.get(*key),
            (PathPart::Index(index), Value::Array(items)) => items.get(*index),
            _ => None,
        };
        match next {
            Some(next) => value = next,
            None => return false,
        }
    }
    true
}

/// Parses `text` as each kind and as whatever kind it says it is.
fn parse_every_way(text: &str, input: Option<&Value>) -> Result<(), TestCaseError> {
    check(
        spec_from_yaml(text, None),
        &["spec", "job", "tenant"],
        input,
        text,
    )?;
    check(spec_from_yaml(text, Some(Kind::Job)), &["job"], input, text)?;
    check(
        spec_from_yaml(text, Some(Kind::Tenant)),
        &["tenant"],
        input,
        text,
    )?;
    check(job_from_yaml(text), &["job"], input, text)?;
    check(tenant_from_yaml(text), &["tenant"], input, text)
}

/// `value` as JSON and as YAML, both of which the parsers read.
fn texts(value: &Value) -> [String; 2] {
    [
        serde_json::to_string(value).expect("a value serialises to JSON"),
        serde_yaml_ng::to_string(value).expect("a value serialises to YAML"),
    ]
}

// ------------------------------------------------------- arbitrary values

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(WORDS.as_slice()).prop_map(str::to_string),
        "[a-z0-9-]{1,12}",
        "\\PC{0,12}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u32..20).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        word().prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS.as_slice()).prop_map(str::to_string),
        1 => "[a-z][a-zA-Z0-9_]{0,6}",
    ]
}

/// A mapping of the user's keys, some with dots, slashes or brackets.
fn free_map() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[A-Za-z_][A-Za-z0-9_./\\[\\]-]{0,12}", leaf(), 0..4)
        .prop_map(|map| Value::Object(map.into_iter().collect()))
}

/// JSON values up to four levels deep, with the keys of real specs.
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        let entry = prop_oneof![
            4 => (key(), inner.clone()),
            1 => (prop::sample::select(FREE_MAPS.as_slice()).prop_map(str::to_string), free_map()),
        ];
        prop_oneof![
            prop::collection::vec(inner, 0..4).prop_map(Value::Array),
            prop::collection::vec(entry, 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

// ------------------------------------------------------------ valid specs

fn dns_label(longest: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!(
        "[a-z0-9]([a-z0-9-]{{0,{}}}[a-z0-9])?",
        longest - 2
    ))
    .expect("a valid regex")
}

fn env_name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,10}"
}

fn cpus() -> impl Strategy<Value = Quantity> {
    prop_oneof![
        (1u64..64).prop_map(Quantity::Int),
        (0.001f64..64.0).prop_map(Quantity::Float),
        (1u64..64_000).prop_map(|milli| Quantity::Text(format!("{milli}m"))),
    ]
}

fn memory() -> impl Strategy<Value = Quantity> {
    let unit = prop::sample::select(vec!["", "Ki", "Mi", "Gi", "k", "M", "G"]);
    prop_oneof![
        (1u64..1 << 40).prop_map(Quantity::Int),
        (1u64..100_000, unit).prop_map(|(n, unit)| Quantity::Text(format!("{n}{unit}"))),
        (1u32..12).prop_map(|exponent| Quantity::Text(format!("1e{exponent}"))),
    ]
}

fn gpus() -> impl Strategy<Value = Gpus> {
    let selector = prop::sample::select(vec![
        "H100:2",
        "A100|H100:4",
        "80GB+:1",
        "0.5GB+:1",
        "H100,80GB+,cc9.0+:8",
        "sm90+:1",
    ]);
    prop_oneof![
        (0u32..9).prop_map(Gpus::any),
        selector.prop_map(|text| Gpus::selected(text.parse::<GpuSelector>().expect("valid"))),
    ]
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    let name = "[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?";
    let key = (prop::option::of(dns_label(20)), name).prop_map(|(prefix, name)| match prefix {
        Some(prefix) => format!("{prefix}.example/{name}"),
        None => name,
    });
    prop::collection::btree_map(key, prop_oneof![Just(String::new()), name], 0..3)
}

/// Everything about a role but its name and replicas.
fn role_body() -> impl Strategy<Value = Role> {
    let command = ("[a-z/._-]{1,12}", prop::collection::vec("\\PC{0,8}", 0..3));
    let env = prop::collection::btree_map(env_name(), "\\PC{0,12}", 0..3);
    let inherit = prop::collection::btree_set(env_name(), 0..3);
    let secrets = prop::collection::btree_set(dns_label(20), 0..3);
    let places = (
        prop::option::of("/[a-z/]{0,12}"),
        prop::option::of("[a-z0-9./:-]{1,20}"),
    );
    (
        command,
        env,
        inherit,
        secrets,
        places,
        (cpus(), memory(), gpus()),
    )
        .prop_map(
            |(
                (program, args),
                env,
                inherit,
                secrets,
                (working_dir, image),
                (cpus, memory, gpus),
            )| {
                let mut role = Role::new("main", 1, &[program.as_str()]);
                role.args = args;
                role.env = env;
                role.inherit_env = inherit.into_iter().collect();
                role.env_from = secrets
                    .into_iter()
                    .map(|secret| EnvFrom { secret })
                    .collect();
                role.working_dir = working_dir;
                role.image = image;
                role.cpus = cpus;
                role.memory = memory;
                role.gpus = gpus;
                role
            },
        )
}

/// The roles of a valid job of `framework`: the required ones, some of the
/// optional ones, each with a replica count in its bounds.
fn roles_of(framework: Framework, wanted: &[(bool, u32)], custom: &[String]) -> Vec<(String, u32)> {
    let Some(rules) = framework.role_rules() else {
        return custom
            .iter()
            .zip(wanted)
            .map(|(name, (_, extra))| (name.clone(), 1 + extra))
            .collect();
    };
    let mut roles: Vec<(String, u32)> = rules
        .iter()
        .zip(wanted)
        .filter(|(rule, (include, _))| rule.required || *include)
        .map(|(rule, (_, extra))| {
            let most = rule.max_replicas.unwrap_or(rule.min_replicas + 3);
            let replicas = (rule.min_replicas + extra).min(most);
            (rule.name.to_string(), replicas)
        })
        .collect();
    if framework == Framework::Tensorflow
        && !roles
            .iter()
            .any(|(name, _)| name == "chief" || name == "worker")
    {
        roles.push(("worker".to_string(), 2));
    }
    roles
}

fn valid_job() -> impl Strategy<Value = Job> {
    let shape = (
        prop::sample::select(Framework::ALL.to_vec()),
        prop::collection::vec((any::<bool>(), 0u32..4), 4),
        prop::collection::btree_set(dns_label(20), 1..4),
        prop::collection::vec(role_body(), 4),
    );
    let settings = (
        any::<bool>(),
        any::<u32>(),
        prop::option::of("[a-z0-9./:-]{1,20}"),
        prop::option::of(1u64..1 << 40),
        prop::option::of(0u64..=i32::MAX as u64),
        labels(),
    );
    (dns_label(40), dns_label(40), shape, settings).prop_map(
        |(name, tenant, (framework, wanted, custom, bodies), settings)| {
            let custom: Vec<String> = custom.into_iter().collect();
            let roles = roles_of(framework, &wanted, &custom)
                .into_iter()
                .zip(bodies)
                .map(|((name, replicas), mut role)| {
                    role.name = name;
                    role.replicas = replicas;
                    role
                })
                .collect();
            let (on_failure, backoff_limit, image, deadline, ttl, labels) = settings;
            let mut job = Job::new(&name, &tenant, framework, roles);
            if on_failure {
                job.restart_policy = RestartPolicy::OnFailure;
            }
            job.backoff_limit = backoff_limit;
            job.image = image;
            job.active_deadline_seconds = deadline;
            job.ttl_seconds_after_finished = ttl;
            job.labels = labels;
            job
        },
    )
}

fn valid_tenant() -> impl Strategy<Value = Tenant> {
    let quota = (
        prop::option::of(cpus()),
        prop::option::of(memory()),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
    );
    let people = prop::collection::vec("[a-z][a-z0-9@.:-]{0,12}", 0..3);
    (dns_label(40), quota, people.clone(), people, labels()).prop_map(
        |(name, (cpus, memory, gpus, jobs), users, groups, labels)| Tenant {
            name,
            quota: TenantQuota {
                cpus,
                memory,
                gpus,
                jobs,
            },
            users,
            groups,
            labels,
            ..Tenant::default()
        },
    )
}

/// Every place in `value`, as JSON pointers.
fn pointers(value: &Value, at: String, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(inner, format!("{at}/{escaped}"), into);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                pointers(inner, format!("{at}/{index}"), into);
            }
        }
        _ => {}
    }
    into.push(at);
}

/// `base` with the place picked by `pick` replaced by `replacement`, or
/// taken out of its mapping or list when there is none.
fn mutated(mut base: Value, pick: prop::sample::Index, replacement: Option<Value>) -> Value {
    let mut places = Vec::new();
    pointers(&base, String::new(), &mut places);
    let place = places[pick.index(places.len())].clone();
    match replacement {
        Some(replacement) => {
            *base.pointer_mut(&place).expect("a place of the value") = replacement;
        }
        None => {
            if let Some((parent, last)) = place.rsplit_once('/') {
                let last = last.replace("~1", "/").replace("~0", "~");
                match base.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&last);
                    }
                    Some(Value::Array(items)) => {
                        items.remove(last.parse::<usize>().expect("an index"));
                    }
                    _ => {}
                }
            }
        }
    }
    base
}

// -------------------------------------------------------------- properties

proptest! {
    #[test]
    fn any_text_is_a_spec_or_an_invalid_spec(text in any::<String>()) {
        parse_every_way(&text, None)?;
    }

    #[test]
    fn yaml_like_text_is_a_spec_or_an_invalid_spec(
        text in "([a-zA-Z]{1,8}|[\\[\\]{}:,\\-#&*!|>'\"%@` \n]|[0-9.e+]{1,6}){0,40}"
    ) {
        parse_every_way(&text, None)?;
    }

    #[test]
    fn any_value_is_a_spec_or_errors_at_its_own_places(value in value()) {
        for text in texts(&value) {
            parse_every_way(&text, Some(&value))?;
        }
    }

    #[test]
    fn a_valid_job_with_one_place_changed_errors_at_its_own_places(
        job in valid_job(),
        pick in any::<prop::sample::Index>(),
        replacement in prop::option::of(value()),
    ) {
        let value = mutated(serde_json::to_value(&job).unwrap(), pick, replacement);
        for text in texts(&value) {
            parse_every_way(&text, Some(&value))?;
        }
    }

    #[test]
    fn a_valid_tenant_with_one_place_changed_errors_at_its_own_places(
        tenant in valid_tenant(),
        pick in any::<prop::sample::Index>(),
        replacement in prop::option::of(value()),
    ) {
        let value = mutated(serde_json::to_value(&tenant).unwrap(), pick, replacement);
        for text in texts(&value) {
            parse_every_way(&text, Some(&value))?;
        }
    }

    #[test]
    fn a_valid_job_reads_back_from_its_json_and_yaml(job in valid_job()) {
        prop_assert_eq!(validate_job(&job), Ok(()));
        let json = serde_json::to_string(&job).unwrap();
        prop_assert_eq!(job_from_yaml(&json), Ok(job.clone()), "{}", json);
        prop_assert_eq!(spec_from_yaml(&json, None), Ok(Spec::Job(job.clone())));
        let yaml = serde_yaml_ng::to_string(&job).unwrap();
        prop_assert_eq!(job_from_yaml(&yaml), Ok(job.clone()), "{}", yaml);
        prop_assert_eq!(Spec::Job(job.clone()).to_json(), json);
    }

    #[test]
    fn a_valid_tenant_reads_back_from_its_json_and_yaml(tenant in valid_tenant()) {
        prop_assert_eq!(validate_tenant(&tenant), Ok(()));
        let json = serde_json::to_string(&tenant).unwrap();
        prop_assert_eq!(tenant_from_yaml(&json), Ok(tenant.clone()), "{}", json);
        prop_assert_eq!(spec_from_yaml(&json, None), Ok(Spec::Tenant(tenant.clone())));
        let yaml = serde_yaml_ng::to_string(&tenant).unwrap();
        prop_assert_eq!(tenant_from_yaml(&yaml), Ok(tenant), "{}", yaml);
    }
}

// ------------------------------------------------------------- quantities

/// Both conversions of `quantity`: a whole number, or a message that ends
/// with the value as written.
fn check_quantity(quantity: &Quantity) -> Result<(), TestCaseError> {
    let written = match quantity {
        Quantity::Text(text) => format!("got {text:?}"),
        other => format!("got {other}"),
    };
    for outcome in [quantity.millicores(), quantity.bytes()] {
        if let Err(message) = outcome {
            prop_assert!(message.ends_with(&written), "{message:?} for {quantity:?}");
        }
    }
    Ok(())
}

/// The units of memory and what each is worth in bytes.
static UNITS: [(&str, u64); 11] = [
    ("", 1),
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
];

/// Below this, every whole number is exact in an f64.
const EXACT: u128 = 1 << 53;

proptest! {
    #[test]
    fn any_text_is_a_quantity_or_an_error_that_quotes_it(text in any::<String>()) {
        check_quantity(&Quantity::Text(text))?;
    }

    #[test]
    fn number_like_text_is_a_quantity_or_an_error_that_quotes_it(
        text in "[ +-]?[0-9]{0,25}(\\.[0-9]{0,5})?([eE][+-]?[0-9]{1,4})?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P|m|e|i|)"
    ) {
        check_quantity(&Quantity::Text(text))?;
    }

    #[test]
    fn any_number_is_a_quantity_or_an_error_that_quotes_it(
        whole in any::<u64>(),
        fraction in any::<f64>(),
    ) {
        check_quantity(&Quantity::Int(whole))?;
        check_quantity(&Quantity::Float(fraction))?;
        prop_assert_eq!(Quantity::Int(whole).bytes(), Ok(whole));
        prop_assert_eq!(Quantity::Int(whole).millicores().ok(), whole.checked_mul(1000));
    }

    #[test]
    fn whole_numbers_with_a_unit_are_exact_or_refused_as_too_large(
        number in prop_oneof![0u64..1 << 20, any::<u64>()],
        unit in 0..UNITS.len(),
    ) {
        let (suffix, factor) = UNITS[unit];
        let exact = u128::from(number) * u128::from(factor);
        let bytes = Quantity::Text(format!("{number}{suffix}")).bytes();
        if exact < EXACT {
            prop_assert_eq!(bytes, Ok(exact as u64));
        } else if exact > u128::from(u64::MAX) {
            prop_assert!(bytes.as_ref().is_err_and(|message| message.contains("must be less than")), "{:?}", bytes);
        }
        let cpus = Quantity::Text(format!("{number}m")).millicores();
        if u128::from(number) < EXACT {
            prop_assert_eq!(cpus, Ok(number));
        }
        let cores = Quantity::Text(number.to_string()).millicores();
        if u128::from(number) * 1000 < EXACT {
            prop_assert_eq!(cores, Ok(number * 1000));
        } else if u128::from(number) * 1000 > u128::from(u64::MAX) {
            prop_assert!(cores.is_err(), "{:?}", cores);
        }
    }
}

#[test]
fn huge_exponents_and_units_are_too_large_not_saturated() {
    for text in ["1e400", "9999999999Pi", "1e20", "18446744073709551616"] {
        let bytes = Quantity::from(text).bytes();
        assert_eq!(
            bytes,
            Err(format!(
                "must be less than 18446744073709551615 bytes, got {text:?}"
            )),
        );
    }
    assert_eq!(
        Quantity::from("1e400m").millicores(),
        Err(r#"must be less than 18446744073709551615 millicores, got "1e400m""#.into())
    );
    assert_eq!(Quantity::from("1e-400").bytes(), Ok(0));
    assert_eq!(
        Quantity::from("NaN").bytes(),
        Err(r#"must be a non-negative number, got "NaN""#.into())
    );
}
