//! The first argument check: the tool's advertised input schema, compiled once at startup. It
//! sees every violation at once, with the path of the value that broke each rule.

use boon::{Compiler, Draft, ErrorKind as Kind, InstanceToken, SchemaIndex, Schemas, Types, ValidationError};
use serde_json::{Map, Value};

use super::validate::Violation;

/// Where the schema sits for the validator; nothing is ever fetched from it.
const LOCATION: &str = "urn:tool-input";

/// A tool's input schema, compiled.
pub struct InputSchema {
    schemas: Schemas,
    root: SchemaIndex,
}

impl InputSchema {
    /// Compiles `schema` (draft 2020-12, formats asserted); an invalid schema is an error.
    pub fn compile(schema: &Map<String, Value>) -> Result<Self, String> {
        let mut compiler = Compiler::new();
        compiler.set_default_draft(Draft::V2020_12);
        compiler.enable_format_assertions();
        compiler
            .add_resource(LOCATION, Value::Object(schema.clone()))
            .map_err(|e| format!("{e:#}"))?;
        let mut schemas = Schemas::new();
        let root = compiler.compile(LOCATION, &mut schemas).map_err(|e| format!("{e:#}"))?;
        Ok(Self { schemas, root })
    }

    /// Every violation of the schema in `arguments`.
    pub fn violations(&self, arguments: &Value) -> Vec<Violation> {
        let mut found = Vec::new();
        if let Err(error) = self.schemas.validate(arguments, self.root) {
            collect(&error, &mut found);
        }
        found
    }
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
