//! Tool schemas carry only the `format`s JSON Schema 2020-12 defines. schemars adds its own
//! (`uint8`, `int64`, `double`, ...), which clients warn about on every `tools/list`; an
//! integer format's range is kept as `minimum`/`maximum`, so nothing the model sees is lost.

use serde_json::{Map, Number, Value};

/// The formats JSON Schema 2020-12 defines.
const STANDARD: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Keywords whose value is data, not a schema: a `format` key inside is data too.
const DATA: &[&str] = &["const", "default", "enum", "examples"];

/// Keywords whose value maps names to schemas: a name such as `format` or `default` is a name.
const NAMED_SCHEMAS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

pub fn is_standard(format: &str) -> bool {
    STANDARD.contains(&format)
}

/// Removes every non-standard `format` from `schema` and its subschemas, adding the bounds an
/// integer format implied where the schema has none as tight.
/// Every `format` value anywhere in `value`.
pub fn formats_in<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            out.extend(map.get("format").and_then(Value::as_str));
            map.values().for_each(|v| formats_in(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| formats_in(v, out)),
        _ => {}
    }
}

pub fn keep_standard_formats(schema: &mut Map<String, Value>) {
    if let Some(Value::String(format)) = schema.get("format")
        && !is_standard(format)
    {
        let (min, max) = integer_range(format);
        schema.remove("format");
        tighten(schema, "minimum", min, |implied, given| implied > given);
        tighten(schema, "maximum", max, |implied, given| implied < given);
    }
    for (keyword, value) in schema.iter_mut() {
        match keyword.as_str() {
            k if DATA.contains(&k) => {}
            k if NAMED_SCHEMAS.contains(&k) => {
                if let Value::Object(named) = value {
                    named.values_mut().for_each(walk);
                }
            }
            _ => walk(value),
        }
    }
}

/// A schema, or an array of them (`allOf`, `prefixItems`, ...).
fn walk(value: &mut Value) {
    match value {
        Value::Object(schema) => keep_standard_formats(schema),
        Value::Array(schemas) => schemas.iter_mut().for_each(walk),
        _ => {}
    }
}

/// The range of the Rust integer type a schemars format names; `None` where unbounded.
fn integer_range(format: &str) -> (Option<Number>, Option<Number>) {
    fn range<T: Into<Number>>(min: T, max: T) -> (Option<Number>, Option<Number>) {
        (Some(min.into()), Some(max.into()))
    }
    match format {
        "int8" => range(i8::MIN, i8::MAX),
        "uint8" => range(u8::MIN, u8::MAX),
        "int16" => range(i16::MIN, i16::MAX),
        "uint16" => range(u16::MIN, u16::MAX),
        "int32" => range(i32::MIN, i32::MAX),
        "uint32" => range(u32::MIN, u32::MAX),
        "int64" => range(i64::MIN, i64::MAX),
        "uint64" => range(u64::MIN, u64::MAX),
        "int" => range(isize::MIN as i64, isize::MAX as i64),
        "uint" => range(usize::MIN as u64, usize::MAX as u64),
        "uint128" => (Some(0.into()), None),
        _ => (None, None),
    }
}

/// Sets `keyword` to `implied` unless the schema already has a bound at least as tight.
fn tighten(schema: &mut Map<String, Value>, keyword: &str, implied: Option<Number>, tighter: fn(f64, f64) -> bool) {
    let Some(implied) = implied else { return };
    let given = schema.get(keyword).and_then(Value::as_f64);
    let implied_f64 = implied.as_f64().unwrap_or_default();
    if given.is_none_or(|given| tighter(implied_f64, given)) {
        schema.insert(keyword.into(), Value::Number(implied));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn standardised(schema: Value) -> Value {
        let Value::Object(mut schema) = schema else {
            unreachable!()
        };
        keep_standard_formats(&mut schema);
        Value::Object(schema)
    }

    #[test]
    fn drops_schemars_formats_and_keeps_their_range() {
        let schema = json!({
            "type": "object",
            "properties": {
                "days": { "type": "integer", "format": "uint8", "minimum": 1, "maximum": 16 },
                "count": { "type": "integer", "format": "uint32", "minimum": 0 },
                "ratio": { "type": "number", "format": "double" },
                "list": { "type": "array", "items": { "type": "integer", "format": "int16" } },
                "when": { "type": "string", "format": "date-time" }
            },
            "$defs": { "Id": { "anyOf": [{ "type": "integer", "format": "int64" }, { "type": "null" }] } }
        });
        assert_eq!(
            standardised(schema),
            json!({
                "type": "object",
                "properties": {
                    "days": { "type": "integer", "minimum": 1, "maximum": 16 },
                    "count": { "type": "integer", "minimum": 0, "maximum": u32::MAX },
                    "ratio": { "type": "number" },
                    "list": { "type": "array", "items": { "type": "integer", "minimum": i16::MIN, "maximum": i16::MAX } },
                    "when": { "type": "string", "format": "date-time" }
                },
                "$defs": { "Id": { "anyOf": [{ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX }, { "type": "null" }] } }
            })
        );
    }

    #[test]
    fn leaves_data_and_property_names_alone() {
        let schema = json!({
            "type": "object",
            "properties": { "format": { "type": "string", "default": { "format": "uint8" } } },
            "examples": [{ "format": "uint8" }]
        });
        assert_eq!(standardised(schema.clone()), schema);
    }
}
