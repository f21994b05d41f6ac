//! Argument checks, each naming the field (a path for nested ones) and the rule it broke:
//! first the tool's advertised input schema, which holds the `validator` rules too (schemars
//! reads `#[validate]`) and sees every violation at once; then serde's parse as the tool's
//! type, for anything the schema cannot say; then the type's `validator` rules.

use std::{borrow::Cow, collections::HashMap, fmt, sync::Arc};

use rmcp::model::JsonObject;
use serde::de::DeserializeOwned;
use serde_json::Value;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use super::schema::InputSchema;

/// One broken rule: the path of the value that broke it (empty: the argument object itself).
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub rule: String,
}

impl Violation {
    pub fn new(path: String, rule: impl Into<String>) -> Self {
        Self {
            path,
            rule: rule.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.as_str() {
            "" => write!(f, "the argument object {}", self.rule),
            path => write!(f, "`{}` {}", crate::telemetry::clip(path), self.rule),
        }
    }
}

/// The most violations an answer names; past them it says how many more there are, so the
/// answer does not grow with what a client sends.
const MAX_LISTED: usize = 10;

/// How a tool's arguments are checked: its schema (once the catalog attaches it), and its type.
#[derive(Clone)]
pub struct ArgumentCheck {
    schema: Option<Arc<InputSchema>>,
    parse: fn(&Value) -> Parsed,
}

/// What parsing as the tool's type found.
enum Parsed {
    /// serde refused the shape; it stops at the first error.
    Shape(Violation),
    /// The type parsed; these are its broken `validator` rules.
    Rules(Vec<Violation>),
}

impl ArgumentCheck {
    pub fn of<A: DeserializeOwned + Validate>() -> Self {
        Self {
            schema: None,
            parse: parse::<A>,
        }
    }

    /// Checks against `schema` first; compiled on the first check, once.
    pub fn with_schema(self, schema: Arc<JsonObject>) -> Self {
        Self {
            schema: Some(Arc::new(InputSchema::new(schema))),
            ..self
        }
    }

    /// Compiles the schema now, if there is one; an invalid schema is an error.
    pub fn schema_compiles(&self) -> Result<(), String> {
        self.schema.as_ref().map_or(Ok(()), |schema| schema.compiles())
    }

    /// `Ok` when the arguments pass; otherwise every violation found, sorted, each once.
    /// The arguments are checked as a JSON value without being copied: the map is moved into
    /// one and back.
    pub fn check(&self, arguments: &mut Option<JsonObject>) -> Result<(), Vec<String>> {
        let given = arguments.is_some();
        let value = Value::Object(arguments.take().unwrap_or_default());
        let checked = self.check_value(&value);
        if let (true, Value::Object(map)) = (given, value) {
            *arguments = Some(map);
        }
        checked
    }

    fn check_value(&self, arguments: &Value) -> Result<(), Vec<String>> {
        let mut found = match &self.schema {
            Some(schema) => schema.violations(arguments),
            None => Vec::new(),
        };
        match (self.parse)(arguments) {
            Parsed::Shape(violation) if found.is_empty() => found.push(violation),
            // serde's first error repeats one the schema has named already.
            Parsed::Shape(_) => {}
            // A field the schema refused is not named twice, by a rule in other words.
            Parsed::Rules(rules) => {
                let named: Vec<_> = found.iter().map(|v| v.path.clone()).collect();
                found.extend(rules.into_iter().filter(|r| !named.contains(&r.path)));
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        Err(listed(&found))
    }
}

/// The violations as sentences, sorted, each once, at most [`MAX_LISTED`] of them.
fn listed(found: &[Violation]) -> Vec<String> {
    let mut messages: Vec<_> = found.iter().map(Violation::to_string).collect();
    messages.sort();
    messages.dedup();
    if messages.len() > MAX_LISTED {
        let more = messages.len() - MAX_LISTED;
        messages.truncate(MAX_LISTED);
        messages.push(format!("and {more} more"));
    }
    messages
}

/// Checks `value`'s `validator` rules where no guard does (a prompt's arguments): Invalid
/// params (-32602) naming each broken rule, in the words a tool's refusal uses.
pub fn check_rules<A: Validate>(what: &str, value: &A) -> Result<(), rmcp::ErrorData> {
    let Err(errors) = value.validate() else {
        return Ok(());
    };
    let mut found = Vec::new();
    describe(&errors, "", &mut found);
    let message = format!("invalid arguments for {what}: {}", listed(&found).join("; "));
    Err(rmcp::ErrorData::invalid_params(message, None))
}

/// Parses `arguments` as `A`, naming the path of a shape error, then runs `A`'s rules.
fn parse<A: DeserializeOwned + Validate>(arguments: &Value) -> Parsed {
    let parsed = match A::deserialize(arguments) {
        Ok(parsed) => parsed,
        Err(error) => return Parsed::Shape(shape_error::<A>(arguments, error)),
    };
    let mut rules = Vec::new();
    if let Err(errors) = parsed.validate() {
        describe(&errors, "", &mut rules);
    }
    Parsed::Rules(rules)
}

/// serde's error with the path of the value it refused. Tracking the path costs as much again
/// as the parse, so only a refused parse is run a second time, tracked.
fn shape_error<A: DeserializeOwned>(arguments: &Value, error: serde_json::Error) -> Violation {
    match serde_path_to_error::deserialize::<_, A>(arguments) {
        Err(tracked) => {
            let path = match tracked.path().to_string().as_str() {
                "." => String::new(),
                path => path.to_owned(),
            };
            Violation::new(path, format!("is not valid: {}", tracked.inner()))
        }
        Ok(_) => Violation::new(String::new(), format!("is not valid: {error}")),
    }
}

fn describe(errors: &ValidationErrors, prefix: &str, out: &mut Vec<Violation>) {
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
                    out.push(Violation::new(path.clone(), format!("{rule}{message}")));
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
fn rule_text(code: &str, params: &HashMap<Cow<'static, str>, Value>) -> String {
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
    use schemars::JsonSchema;
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Deserialize, JsonSchema, Validate)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[validate(range(min = 1, max = 5))]
        level: u8,
    }

    #[derive(Deserialize, JsonSchema, Validate)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[validate(length(min = 2, max = 4))]
        name: String,
        #[validate(nested)]
        inner: Inner,
        /// A rule schemars cannot put in the schema.
        #[serde(default)]
        #[validate(custom(function = "even"))]
        pairs: u32,
    }

    fn even(n: u32) -> Result<(), validator::ValidationError> {
        match n % 2 {
            0 => Ok(()),
            _ => Err(validator::ValidationError::new("even")),
        }
    }

    fn with_schema() -> ArgumentCheck {
        let schema = rmcp::handler::server::common::schema_for_input::<Outer>().unwrap();
        let check = ArgumentCheck::of::<Outer>().with_schema(schema);
        check.schema_compiles().unwrap();
        check
    }

    fn check(checker: &ArgumentCheck, value: Value) -> Vec<String> {
        let mut arguments = value.as_object().cloned();
        let before = arguments.clone();
        let found = checker.check(&mut arguments).err().unwrap_or_default();
        assert_eq!(arguments, before, "the arguments come back as they were");
        found
    }

    #[test]
    fn the_schema_names_every_field_and_rule_at_once() {
        let checker = with_schema();
        assert_eq!(
            check(
                &checker,
                json!({ "name": 7, "inner": { "level": 300, "x": 1 }, "extra": true })
            ),
            [
                "`extra` is not an allowed field (additionalProperties)",
                "`inner.level` must be at most 5 (maximum)",
                "`inner.x` is not an allowed field (additionalProperties)",
                "`name` must be a string (type)",
            ]
        );
        assert_eq!(
            check(&checker, json!({ "inner": {} })),
            ["`inner.level` is required (required)", "`name` is required (required)"]
        );
        assert!(check(&checker, json!({ "name": "ok", "inner": { "level": 3 } })).is_empty());
        assert!(
            checker.check(&mut None).is_err(),
            "no arguments: the required fields are missing"
        );
    }

    #[test]
    fn a_field_is_named_once_and_rules_the_schema_lacks_still_count() {
        let checker = with_schema();
        // `name` breaks minLength in the schema and length in validator: one message.
        // `pairs` breaks only the custom rule, which the schema cannot see.
        assert_eq!(
            check(&checker, json!({ "name": "x", "inner": { "level": 3 }, "pairs": 3 })),
            [
                "`name` must have at least 2 characters (minLength)",
                "`pairs` breaks the rule 'even'",
            ]
        );
    }

    #[test]
    fn without_a_schema_serde_and_validator_name_the_path() {
        let checker = ArgumentCheck::of::<Outer>();
        assert_eq!(
            check(&checker, json!({ "name": "x", "inner": { "level": 9 } })),
            [
                "`inner.level` must be between 1 and 5 (range)",
                "`name` must have 2 to 4 characters or items (length)",
            ]
        );
        assert_eq!(
            check(&checker, json!({ "name": "ok", "inner": { "level": 300 } })),
            ["`inner.level` is not valid: invalid value: integer `300`, expected u8"]
        );
        assert_eq!(
            check(&checker, json!({ "name": "ok", "inner": { "level": 3 }, "x": 1 }))[0],
            "`x` is not valid: unknown field `x`, expected one of `name`, `inner`, `pairs`"
        );
        assert_eq!(
            check(&checker, json!({ "inner": { "level": 3 } })),
            ["the argument object is not valid: missing field `name`"]
        );
    }
}
