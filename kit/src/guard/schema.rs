//! The first argument check: the tool's advertised input schema, compiled on the tool's first
//! call (a server starts without compiling schemas no one has used yet) and kept. It sees every
//! violation at once, with the path of the value that broke each rule. The catalog's tests
//! compile every tool's schema, so one that does not compile fails the build's tests.

use std::sync::{Arc, OnceLock};

use boon::{Compiler, Draft, ErrorKind as Kind, InstanceToken, SchemaIndex, Schemas, Types, ValidationError};
use rmcp::model::JsonObject;
use serde_json::{Map, Value};

use super::validate::Violation;

/// Where a schema sits for the validator; nothing is ever fetched from either. boon checks a
/// schema against its draft's metaschema unless it sits under json-schema.org, and that check
/// first compiles the metaschemas of every draft boon knows: most of a start-up's CPU and page
/// faults. So calls compile a schema where it is not checked, and the catalog's tests compile
/// every tool's schema where it is ([`InputSchema::compiles`]).
const UNCHECKED: &str = "https://json-schema.org/tool-input";
const CHECKED: &str = "urn:tool-input";

/// A tool's input schema, compiled when first needed.
pub struct InputSchema {
    source: Arc<JsonObject>,
    compiled: OnceLock<Result<Compiled, String>>,
}

struct Compiled {
    schemas: Schemas,
    root: SchemaIndex,
}

impl InputSchema {
    /// `schema` (draft 2020-12, formats asserted), to be compiled on first use.
    pub fn new(schema: Arc<JsonObject>) -> Self {
        Self {
            source: schema,
            compiled: OnceLock::new(),
        }
    }

    /// Compiles the schema, checked against its draft's metaschema; an invalid schema is an
    /// error. What the catalog's tests run for every tool.
    pub fn compiles(&self) -> Result<(), String> {
        compile(&self.source, CHECKED).map(|_| ())
    }

    /// The compiled schema; the first call compiles it, and logs once if it does not compile.
    /// A schema that fails unchecked is compiled checked, for the error that names the fault
    /// (unchecked, boon reports a broken pattern as a bug of its own). Debug builds check from
    /// the start: there boon asserts, with a panic, what the check would have refused.
    fn get(&self) -> Result<&Compiled, &String> {
        let compiled = self.compiled.get_or_init(|| {
            let compiled = match cfg!(debug_assertions) {
                true => compile(&self.source, CHECKED),
                false => compile(&self.source, UNCHECKED).or_else(|_| compile(&self.source, CHECKED)),
            };
            if let Err(error) = &compiled {
                tracing::error!(event = "schema_invalid", %error, "a tool's input schema does not compile");
            }
            compiled
        });
        compiled.as_ref()
    }

    /// Every violation of the schema in `arguments`. A schema that does not compile (a fault in
    /// the tool's declaration, which the catalog's tests catch) checks nothing and says so.
    pub fn violations(&self, arguments: &Value) -> Vec<Violation> {
        let compiled = match self.get() {
            Ok(compiled) => compiled,
            Err(_) => {
                return vec![Violation::new(
                    String::new(),
                    "cannot be checked: the tool's input schema does not compile (a fault in the server)",
                )];
            }
        };
        let mut found = Vec::new();
        if let Err(error) = compiled.schemas.validate(arguments, compiled.root) {
            collect(&error, &mut found);
        }
        found
    }
}

fn compile(schema: &Map<String, Value>, location: &str) -> Result<Compiled, String> {
    let mut compiler = Compiler::new();
    compiler.set_default_draft(Draft::V2020_12);
    compiler.enable_format_assertions();
    compiler
        .add_resource(location, Value::Object(schema.clone()))
        .map_err(|e| format!("{e:#}"))?;
    let mut schemas = Schemas::new();
    let root = compiler.compile(location, &mut schemas).map_err(|e| format!("{e:#}"))?;
    Ok(Compiled { schemas, root })
}

/// The violations in boon's tree of errors: its leaves, and any `anyOf`/`oneOf`/`not` as one.
fn collect(error: &ValidationError<'_, '_>, out: &mut Vec<Violation>) {
    let at = path(error);
    let field = |name: &str| {
        if at.is_empty() {
            name.to_owned()
        } else {
            format!("{at}.{name}")
        }
    };
    match &error.kind {
        Kind::Group | Kind::Schema { .. } | Kind::Reference { .. } | Kind::AllOf => {
            error.causes.iter().for_each(|cause| collect(cause, out));
        }
        Kind::Required { want } => {
            out.extend(
                want.iter()
                    .map(|name| Violation::new(field(name), "is required (required)")),
            );
        }
        Kind::AdditionalProperties { got } => out.extend(
            got.iter()
                .map(|name| Violation::new(field(name), "is not an allowed field (additionalProperties)")),
        ),
        Kind::DependentRequired { prop, missing } | Kind::Dependency { prop, missing } => {
            let keyword = match &error.kind {
                Kind::Dependency { .. } => "dependencies",
                _ => "dependentRequired",
            };
            out.extend(
                missing
                    .iter()
                    .map(|name| Violation::new(field(name), format!("is required with `{prop}` ({keyword})"))),
            );
        }
        Kind::PropertyName { prop } => {
            out.push(Violation::new(
                field(prop),
                "is not an allowed field name (propertyNames)",
            ));
        }
        kind => out.push(Violation::new(at, rule(kind))),
    }
}

/// `temperature.unit`, `items[2].name`: the instance location as fields read in Rust.
fn path(error: &ValidationError<'_, '_>) -> String {
    let mut path = String::new();
    for token in &error.instance_location.tokens {
        match token {
            InstanceToken::Item(index) => path.push_str(&format!("[{index}]")),
            InstanceToken::Prop(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
            }
        }
    }
    path
}

/// What the value must be, in plain words, and the keyword it broke.
fn rule(kind: &Kind<'_, '_>) -> String {
    let (text, keyword) = match kind {
        Kind::Type { want, .. } => (format!("must be {}", types(*want)), "type"),
        Kind::Enum { want } => (format!("must be one of {}", one_of(want)), "enum"),
        Kind::Const { want } => (format!("must be {}", plain(want)), "const"),
        Kind::Format { want, .. } => (format!("must be a valid {want}"), "format"),
        Kind::Minimum { want, .. } => (format!("must be at least {want}"), "minimum"),
        Kind::Maximum { want, .. } => (format!("must be at most {want}"), "maximum"),
        Kind::ExclusiveMinimum { want, .. } => (format!("must be greater than {want}"), "exclusiveMinimum"),
        Kind::ExclusiveMaximum { want, .. } => (format!("must be less than {want}"), "exclusiveMaximum"),
        Kind::MultipleOf { want, .. } => (format!("must be a multiple of {want}"), "multipleOf"),
        Kind::MinLength { want, .. } => (format!("must have at least {}", count(*want, "character")), "minLength"),
        Kind::MaxLength { want, .. } => (format!("must have at most {}", count(*want, "character")), "maxLength"),
        Kind::MinItems { want, .. } => (format!("must have at least {}", count(*want, "item")), "minItems"),
        Kind::MaxItems { want, .. } => (format!("must have at most {}", count(*want, "item")), "maxItems"),
        Kind::MinProperties { want, .. } => (format!("must have at least {}", count(*want, "field")), "minProperties"),
        Kind::MaxProperties { want, .. } => (format!("must have at most {}", count(*want, "field")), "maxProperties"),
        Kind::UniqueItems { .. } => ("must not repeat an item".into(), "uniqueItems"),
        Kind::Pattern { want, .. } => (format!("must match the pattern {want}"), "pattern"),
        Kind::AnyOf => ("must match one of the allowed forms".into(), "anyOf"),
        Kind::OneOf(None) => ("must match one of the allowed forms".into(), "oneOf"),
        Kind::OneOf(Some(_)) => ("must match exactly one of the allowed forms".into(), "oneOf"),
        Kind::Not => ("must not match the excluded form".into(), "not"),
        Kind::Contains => ("must contain a matching item".into(), "contains"),
        Kind::FalseSchema => ("is not allowed".into(), "false schema"),
        other => return format!("is not valid: {other}"),
    };
    format!("{text} ({keyword})")
}

fn types(want: Types) -> String {
    let name = |t: boon::Type| match t {
        boon::Type::Null => "null",
        boon::Type::Boolean => "a boolean",
        boon::Type::Integer => "an integer",
        boon::Type::Number => "a number",
        boon::Type::String => "a string",
        boon::Type::Array => "an array",
        boon::Type::Object => "an object",
    };
    want.iter().map(name).collect::<Vec<_>>().join(" or ")
}

/// "1 character", "2 characters".
fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

fn one_of(options: &[Value]) -> String {
    options.iter().map(plain).collect::<Vec<_>>().join(", ")
}

/// A string as it reads, anything else as JSON.
fn plain(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(value: Value) -> InputSchema {
        let Value::Object(map) = value else { panic!("an object") };
        InputSchema::new(Arc::new(map))
    }

    #[test]
    fn the_metaschema_check_refuses_an_invalid_schema() {
        let invalid = schema(json!({"type": "object", "properties": {"a": {"type": 7}}}));
        let error = invalid.compiles().unwrap_err();
        assert!(error.contains("jsonschema validation failed"), "{error}");
    }

    #[test]
    fn calls_see_what_a_checked_schema_sees() {
        let source = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "when": {"type": "string", "format": "date"},
                "items": {"type": "array", "items": {"type": "integer", "minimum": 0}}
            },
            "required": ["name"],
            "additionalProperties": false
        });
        let fast = schema(source.clone());
        fast.compiles().unwrap();
        let Value::Object(map) = source else { unreachable!() };
        let checked = compile(&map, CHECKED).unwrap();
        for arguments in [
            json!({"name": "abc"}),
            json!({"name": "ABCDEFG", "when": "yesterday", "items": [1, -1, "x"], "extra": true}),
            json!({}),
        ] {
            let mut expected = Vec::new();
            if let Err(error) = checked.schemas.validate(&arguments, checked.root) {
                collect(&error, &mut expected);
            }
            assert_eq!(fast.violations(&arguments), expected, "{arguments}");
        }
        assert!(!fast.violations(&json!({})).is_empty());
    }
}
