//! Argument checks: parse the JSON arguments as the tool's type, then run its `validator`
//! rules, and say in one message every field that broke which rule. The same rules appear in
//! the tool's JSON Schema (schemars reads `#[validate]`), so the model sees them up front.

use std::borrow::Cow;

use rmcp::model::JsonObject;
use serde::de::DeserializeOwned;
use serde_json::Value;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

/// Parses `arguments` as `A` and validates it; the error lists every violation.
pub fn arguments<A: DeserializeOwned + Validate>(arguments: Option<&JsonObject>) -> Result<(), Vec<String>> {
    let value = Value::Object(arguments.cloned().unwrap_or_default());
    let parsed: A = serde_json::from_value(value).map_err(|e| vec![e.to_string()])?;
    parsed.validate().map_err(|errors| {
        let mut violations = Vec::new();
        describe(&errors, "", &mut violations);
        violations.sort();
        violations
    })
}

fn describe(errors: &ValidationErrors, prefix: &str, out: &mut Vec<String>) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    let rule = rule_text(&error.code, &error.params);
                    let message = error.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
                    out.push(format!("`{path}` {rule}{message}"));
                }
            }
            ValidationErrorsKind::Struct(nested) => describe(nested, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, nested) in items {
                    describe(nested, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

/// "must be between 1 and 16" and the like, from validator's code and parameters.
fn rule_text(code: &str, params: &std::collections::HashMap<Cow<'static, str>, Value>) -> String {
    let bound = |key: &str| params.get(key).map(|v| v.to_string());
    match code {
        "range" => match (bound("min"), bound("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max} (range)"),
            (Some(min), None) => format!("must be at least {min} (range)"),
            (None, Some(max)) => format!("must be at most {max} (range)"),
            _ => "is out of range (range)".into(),
        },
        "length" => match (bound("min"), bound("max"), bound("equal")) {
            (_, _, Some(n)) => format!("must have exactly {n} characters or items (length)"),
            (Some(min), Some(max), _) => format!("must have {min} to {max} characters or items (length)"),
            (Some(min), None, _) => format!("must have at least {min} characters or items (length)"),
            (None, Some(max), _) => format!("must have at most {max} characters or items (length)"),
            _ => "has the wrong length (length)".into(),
        },
        "regex" => "has characters that are not allowed (pattern)".into(),
        "email" => "must be an email address (email)".into(),
        "url" => "must be a URL (url)".into(),
        other => format!("breaks the rule '{other}'"),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[validate(range(min = 1, max = 5))]
        level: u8,
    }

    #[derive(Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[validate(length(min = 2, max = 4))]
        name: String,
        #[validate(nested)]
        inner: Inner,
    }

    fn check(value: Value) -> Result<(), Vec<String>> {
        arguments::<Outer>(value.as_object())
    }

    #[test]
    fn names_every_field_and_rule() {
        let errors = check(json!({ "name": "x", "inner": { "level": 9 } })).unwrap_err();
        assert_eq!(
            errors,
            [
                "`inner.level` must be between 1 and 5 (range)",
                "`name` must have 2 to 4 characters or items (length)",
            ]
        );
        assert!(check(json!({ "name": "ok", "inner": { "level": 3 } })).is_ok());
    }

    #[test]
    fn reports_shape_errors() {
        assert!(
            check(json!({ "name": "ok", "inner": { "level": 3 }, "x": 1 })).unwrap_err()[0]
                .contains("unknown field `x`")
        );
        assert!(check(json!({ "inner": { "level": 3 } })).unwrap_err()[0].contains("missing field `name`"));
    }
}
