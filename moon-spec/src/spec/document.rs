//! A spec of any kind, told apart in one place: [`spec_kind`] reads a
//! text's `kind` key (or, for files written before it, guesses from its
//! keys, as the [`kind`](super::Kind) module says) and [`spec_from_yaml`]
//! parses and validates it as that kind.

use super::{
    Job, Kind, Service, Tenant, from_yaml, struct_from_yaml, validate_job, validate_service,
    validate_tenant,
};
use crate::error::{Error, rule};

/// A spec of any kind, parsed and validated.
// One is made per document read, so its size does not matter; boxing the tenant would only
// make matching on it clumsier for every caller.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Spec {
    /// A tenant.
    Tenant(Tenant),
    /// A job.
    Job(Job),
    /// A service.
    Service(Service),
}

impl Spec {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Tenant(_) => Kind::Tenant,
            Spec::Job(_) => Kind::Job,
            Spec::Service(_) => Kind::Service,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Spec::Tenant(tenant) => &tenant.name,
            Spec::Job(job) => &job.name,
            Spec::Service(service) => &service.name,
        }
    }

    /// The canonical JSON of the spec, `kind` included.
    pub fn to_json(&self) -> String {
        let json = match self {
            Spec::Tenant(tenant) => serde_json::to_string(tenant),
            Spec::Job(job) => serde_json::to_string(job),
            Spec::Service(service) => serde_json::to_string(service),
        };
        json.expect("a spec serialises to JSON")
    }
}

/// Which kind of spec `text` (YAML or JSON) holds: its `kind` key, else as
/// the module documentation says. Text that is not YAML at all is an
/// `InvalidSpec` of kind `spec`, as is a `kind` moon does not know.
pub fn spec_kind(text: &str) -> Result<Kind, Error> {
    let value: serde_json::Value = from_yaml("spec", text)?;
    let serde_json::Value::Object(mapping) = value else {
        return Ok(Kind::Tenant);
    };
    match mapping.get("kind") {
        Some(serde_json::Value::String(name)) => Kind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| unknown_kind(&format!("{name:?}"))),
        Some(other) => Err(unknown_kind(&other.to_string())),
        None if ["roles", "tenant", "framework"]
            .iter()
            .any(|key| mapping.contains_key(*key)) =>
        {
            Ok(Kind::Job)
        }
        None => Ok(Kind::Tenant),
    }
}

fn unknown_kind(found: &str) -> Error {
    let known: Vec<&str> = Kind::ALL.iter().map(|kind| kind.as_str()).collect();
    Error::invalid(
        "spec",
        "kind",
        rule::TYPE,
        format!("unknown kind {found}; moon reads {}", known.join(", ")),
    )
}

/// Parses and validates a spec of any kind; with `kind`, the text must be
/// of that kind (a `kind` key that says otherwise is refused at `kind`).
pub fn spec_from_yaml(text: &str, kind: Option<Kind>) -> Result<Spec, Error> {
    let kind = match kind {
        Some(kind) => kind,
        None => spec_kind(text)?,
    };
    Ok(match kind {
        Kind::Tenant => {
            let tenant: Tenant = struct_from_yaml("tenant", text)?;
            validate_tenant(&tenant)?;
            Spec::Tenant(tenant)
        }
        Kind::Job => {
            let job: Job = struct_from_yaml("job", text)?;
            validate_job(&job)?;
            Spec::Job(job)
        }
        Kind::Service => {
            let service: Service = struct_from_yaml("service", text)?;
            validate_service(&service)?;
            Spec::Service(service)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "name: demo\ntenant: vision\nframework: custom\nroles:\n  - name: main\n    command: [echo, hi]\n";

    #[test]
    fn a_kind_key_decides_and_old_files_are_guessed() {
        assert_eq!(spec_kind(JOB).unwrap(), Kind::Job);
        assert_eq!(spec_kind(&format!("kind: Job\n{JOB}")).unwrap(), Kind::Job);
        assert_eq!(
            spec_kind(r#"{"name": "demo", "roles": []}"#).unwrap(),
            Kind::Job
        );
        assert_eq!(
            spec_kind("name: demo\nquota: {gpus: 2}\n").unwrap(),
            Kind::Tenant
        );
        assert_eq!(
            spec_kind("kind: Tenant\nname: demo\ntenant: x\n").unwrap(),
            Kind::Tenant
        );
        assert_eq!(spec_kind("- a list\n").unwrap(), Kind::Tenant);
    }

    #[test]
    fn an_unknown_kind_or_broken_text_is_an_invalid_spec() {
        let error = spec_kind("kind: Notebook\nname: web\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid spec: kind: unknown kind \"Notebook\"; moon reads Tenant, Job, Service"
        );
        assert!(matches!(
            spec_kind("name: [unclosed\n"),
            Err(Error::InvalidSpec { kind: "spec", .. })
        ));
    }

    #[test]
    fn a_spec_of_another_kind_is_refused_at_kind() {
        let error = spec_from_yaml("kind: Tenant\nname: demo\n", Some(Kind::Job)).unwrap_err();
        let Error::InvalidSpec {
            kind: "job",
            errors,
        } = error
        else {
            panic!("expected an invalid job, got {error:?}");
        };
        assert_eq!(errors.0[0].path, "kind");
        assert_eq!(errors.0[0].rule, rule::TYPE);
    }

    #[test]
    fn specs_write_their_kind() {
        let Spec::Job(job) = spec_from_yaml(JOB, None).unwrap() else {
            panic!("a job");
        };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["kind"], "Job");
        let written: serde_json::Value = serde_json::from_str(&Spec::Job(job).to_json()).unwrap();
        assert_eq!(written, json);
    }
}
