//! Specs are mappings, never lists.
//!
//! serde's derived structs also accept a sequence of their fields in
//! order, so `quota: [-1]` would read as `quota: {cpus: -1}` and the user
//! would be told about a `quota.cpus` they never wrote. Every struct of a
//! spec is read through [`MappingOnly`], which lets a mapping through and
//! refuses anything else as "expected a mapping" at the struct's own place.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// A `T` that was written as a mapping.
pub(crate) struct Mapped<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Mapped<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(MappingOnly(deserializer)).map(Mapped)
    }
}

/// For `#[serde(deserialize_with)]` on a field holding one struct.
pub(crate) fn one<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Mapped::<T>::deserialize(deserializer).map(|Mapped(value)| value)
}

/// For `#[serde(deserialize_with)]` on an optional struct whose mere presence means
/// something: a key written with no value (`seaweedfs:` in YAML, `null` in JSON) is the
/// struct's defaults, not its absence.
pub(crate) fn some<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let value = Option::<Mapped<T>>::deserialize(deserializer)?;
    Ok(Some(value.map_or_else(T::default, |Mapped(value)| value)))
}

/// For `#[serde(deserialize_with)]` on an optional struct with required fields: present, it
/// must be a mapping.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    one(deserializer).map(Some)
}

/// For `#[serde(deserialize_with)]` on a field holding a list of structs.
pub(crate) fn each<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Vec::<Mapped<T>>::deserialize(deserializer)?;
    Ok(items.into_iter().map(|Mapped(value)| value).collect())
}

/// A deserializer that hands its visitor only mappings.
struct MappingOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MappingOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(MappingVisitor(visitor))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(MappingVisitor(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_struct(name, fields, MappingVisitor(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct enum identifier ignored_any
    }
}

/// Passes mappings on to the struct's own visitor; everything else is the
/// wrong type.
struct MappingVisitor<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for MappingVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(map)
    }
}

#[cfg(test)]
mod tests {
    use crate::Error;
    use crate::spec::{Kind, job_from_yaml, spec_from_yaml, tenant_from_yaml};

    fn whole_spec_error(outcome: Result<impl std::fmt::Debug, Error>) -> String {
        match outcome {
            Err(Error::InvalidSpec { errors, .. }) => {
                assert_eq!(errors.0.len(), 1, "{errors:?}");
                assert_eq!(errors.0[0].path, "", "{errors:?}");
                errors.0[0].message.clone()
            }
            other => panic!("not an invalid spec: {other:?}"),
        }
    }

    #[test]
    fn a_spec_written_as_a_list_is_refused_as_a_whole() {
        for text in [
            r#"["sweep", "research", "custom", []]"#,
            "- sweep\n- research\n",
        ] {
            let expected = "invalid type: sequence, expected a mapping";
            assert_eq!(whole_spec_error(job_from_yaml(text)), expected, "{text}");
            assert_eq!(whole_spec_error(tenant_from_yaml(text)), expected, "{text}");
            let job = spec_from_yaml(text, Some(Kind::Job));
            assert_eq!(whole_spec_error(job), expected, "{text}");
        }
    }

    #[test]
    fn a_mapping_still_reads() {
        let tenant = tenant_from_yaml("name: vision\nquota: {cpus: 2}\n").unwrap();
        assert_eq!(
            tenant.quota.cpus.map(|cpus| cpus.to_string()),
            Some("2".into())
        );
    }
}
