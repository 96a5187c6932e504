//! Generates the message types from Kafka's message schemas in `schemas/`
//! (field names, types, versions and tags, kept as data) and the error codes
//! from `schemas/error-codes.tsv`.
//!
//! Output, in `$OUT_DIR`: `messages.rs` (one module per message with its
//! structs, encode and decode), `api.rs` (the `ApiKey` enum, the version
//! table, and the request/response enums) and `error_codes.rs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let schema_dir = manifest_dir.join("schemas");
    println!("cargo:rerun-if-changed=schemas");

    let mut schemas = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&schema_dir)
        .expect("schemas/ is readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("schema is readable");
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        schemas.push(Schema::parse(&value));
    }

    let mut messages = String::new();
    for schema in &schemas {
        generate_message(&mut messages, schema);
    }
    generate_testing_list(&mut messages, &schemas);
    write(&out_dir.join("messages.rs"), &messages);
    write(&out_dir.join("api.rs"), &generate_api(&schemas));
    write(
        &out_dir.join("error_codes.rs"),
        &generate_error_codes(
            &std::fs::read_to_string(schema_dir.join("error-codes.tsv")).expect("error-codes.tsv"),
        ),
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
}

// ---------------------------------------------------------------- schema model

#[derive(Clone, Copy, Debug, PartialEq)]
struct Versions {
    low: i16,
    high: i16,
}

impl Versions {
    const NONE: Versions = Versions { low: 1, high: 0 };
    const ALL: Versions = Versions {
        low: 0,
        high: i16::MAX,
    };

    fn parse(text: &str) -> Versions {
        let text = text.trim();
        if text == "none" {
            return Versions::NONE;
        }
        if let Some(low) = text.strip_suffix('+') {
            return Versions {
                low: low.parse().expect("version"),
                high: i16::MAX,
            };
        }
        if let Some((low, high)) = text.split_once('-') {
            return Versions {
                low: low.parse().expect("version"),
                high: high.parse().expect("version"),
            };
        }
        let single = text.parse().expect("version");
        Versions {
            low: single,
            high: single,
        }
    }

    fn is_empty(&self) -> bool {
        self.low > self.high
    }

    fn intersect(&self, other: Versions) -> Versions {
        Versions {
            low: self.low.max(other.low),
            high: self.high.min(other.high),
        }
    }

    fn contains_range(&self, other: Versions) -> bool {
        other.is_empty() || (self.low <= other.low && other.high <= self.high)
    }

    /// A Rust condition on `version` that holds within these versions, given
    /// that `version` is already known to lie within `context`.
    fn condition(&self, context: Versions) -> String {
        if self.is_empty() || self.intersect(context).is_empty() {
            return "false".into();
        }
        if self.contains_range(context) {
            return "true".into();
        }
        let mut parts = Vec::new();
        if self.low > context.low {
            parts.push(format!("version >= {}", self.low));
        }
        if self.high < context.high {
            parts.push(format!("version <= {}", self.high));
        }
        parts.join(" && ")
    }
}

#[derive(Clone, Debug)]
enum Type {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Float64,
    Uuid,
    String,
    Bytes,
    Records,
    Array(Box<Type>),
    Struct(String),
}

impl Type {
    fn parse(text: &str) -> Type {
        if let Some(inner) = text.strip_prefix("[]") {
            return Type::Array(Box::new(Type::parse(inner)));
        }
        match text {
            "bool" => Type::Bool,
            "int8" => Type::Int8,
            "int16" => Type::Int16,
            "uint16" => Type::Uint16,
            "int32" => Type::Int32,
            "uint32" => Type::Uint32,
            "int64" => Type::Int64,
            "float64" => Type::Float64,
            "uuid" => Type::Uuid,
            "string" => Type::String,
            "bytes" => Type::Bytes,
            "records" => Type::Records,
            other => Type::Struct(other.to_string()),
        }
    }

    fn rust(&self) -> String {
        match self {
            Type::Bool => "bool".into(),
            Type::Int8 => "i8".into(),
            Type::Int16 => "i16".into(),
            Type::Uint16 => "u16".into(),
            Type::Int32 => "i32".into(),
            Type::Uint32 => "u32".into(),
            Type::Int64 => "i64".into(),
            Type::Float64 => "f64".into(),
            Type::Uuid => "crate::codec::Uuid".into(),
            Type::String => "crate::codec::StrBytes".into(),
            Type::Bytes | Type::Records => "::bytes::Bytes".into(),
            Type::Array(inner) => format!("::std::vec::Vec<{}>", inner.rust()),
            Type::Struct(name) => name.clone(),
        }
    }
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    ident: String,
    ty: Type,
    versions: Versions,
    nullable: Versions,
    tagged: Option<(u32, Versions)>,
    /// `None` when the field follows the message's flexible versions.
    flexible_override: Option<Versions>,
    default: Option<String>,
    about: Option<String>,
}

#[derive(Clone, Debug)]
struct StructDef {
    name: String,
    fields: Vec<Field>,
}

struct Schema {
    name: String,
    kind: String,
    api_key: Option<i16>,
    valid: Versions,
    flexible: Versions,
    latest_unstable: bool,
    listeners: Vec<String>,
    top: StructDef,
    structs: Vec<StructDef>,
}

impl Schema {
    fn parse(value: &Value) -> Schema {
        let name = value["name"].as_str().expect("name").to_string();
        let mut structs = Vec::new();
        let fields = parse_fields(&value["fields"], &mut structs);
        if let Some(common) = value["commonStructs"].as_array() {
            for common_struct in common {
                let fields = parse_fields(&common_struct["fields"], &mut structs);
                structs.push(StructDef {
                    name: common_struct["name"].as_str().expect("name").to_string(),
                    fields,
                });
            }
        }
        Schema {
            kind: value["type"].as_str().expect("type").to_string(),
            api_key: value["apiKey"].as_i64().map(|key| key as i16),
            valid: Versions::parse(value["validVersions"].as_str().expect("validVersions")),
            flexible: Versions::parse(value["flexibleVersions"].as_str().unwrap_or("none")),
            latest_unstable: value["latestVersionUnstable"].as_bool().unwrap_or(false),
            listeners: value["listeners"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|item| item.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            top: StructDef {
                name: name.clone(),
                fields,
            },
            structs,
            name,
        }
    }
}

fn parse_fields(value: &Value, structs: &mut Vec<StructDef>) -> Vec<Field> {
    let Some(list) = value.as_array() else {
        return Vec::new();
    };
    let mut fields = Vec::new();
    for item in list {
        let name = item["name"].as_str().expect("field name").to_string();
        let type_text = item["type"].as_str().expect("field type");
        let ty = Type::parse(type_text);
        if item.get("fields").is_some() {
            let struct_name = type_text.trim_start_matches("[]").to_string();
            let nested = parse_fields(&item["fields"], structs);
            structs.push(StructDef {
                name: struct_name,
                fields: nested,
            });
        }
        let versions = Versions::parse(item["versions"].as_str().expect("versions"));
        let tag = match &item["tag"] {
            Value::Number(number) => number.as_u64(),
            Value::String(text) => Some(text.trim().parse().expect("numeric tag")),
            _ => None,
        };
        let tagged = tag.map(|tag| {
            let tagged_versions =
                Versions::parse(item["taggedVersions"].as_str().expect("taggedVersions"));
            (tag as u32, tagged_versions)
        });
        if let Some((_, tagged_versions)) = tagged {
            assert!(
                tagged_versions.contains_range(versions),
                "{name}: tagged in only some of its versions"
            );
        }
        fields.push(Field {
            ident: rust_ident(&snake_case(&name)),
            ty,
            versions,
            nullable: item["nullableVersions"]
                .as_str()
                .map(Versions::parse)
                .unwrap_or(Versions::NONE),
            tagged,
            flexible_override: item["flexibleVersions"].as_str().map(Versions::parse),
            default: item.get("default").map(|default| match default {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            }),
            about: item["about"].as_str().map(str::to_string),
            name,
        });
    }
    fields
}

fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (index, &ch) in chars.iter().enumerate() {
        if ch.is_uppercase() {
            let previous_lower =
                index > 0 && (chars[index - 1].is_lowercase() || chars[index - 1].is_ascii_digit());
            let next_lower = chars.get(index + 1).is_some_and(|next| next.is_lowercase());
            let previous_upper = index > 0 && chars[index - 1].is_uppercase();
            if index > 0 && (previous_lower || (previous_upper && next_lower)) {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

fn rust_ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn",
        "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
        "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
        "where", "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final",
        "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
    ];
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

// ---------------------------------------------------------------- defaults

impl Field {
    fn is_option(&self) -> bool {
        !self.nullable.is_empty()
    }

    fn rust_type(&self) -> String {
        if self.is_option() {
            format!("::std::option::Option<{}>", self.ty.rust())
        } else {
            self.ty.rust()
        }
    }

    fn default_expr(&self) -> String {
        let default = self.default.as_deref().map(str::trim);
        let is_null = default.is_some_and(|text| text.eq_ignore_ascii_case("null"));
        let value = match &self.ty {
            Type::Bool => match default {
                Some(text) if text.eq_ignore_ascii_case("true") => "true".into(),
                _ => "false".into(),
            },
            Type::Int8 | Type::Int16 | Type::Uint16 | Type::Int32 | Type::Uint32 | Type::Int64 => {
                let literal = default.filter(|text| !text.is_empty()).unwrap_or("0");
                let parsed: i128 = if let Some(hex) = literal.strip_prefix("0x") {
                    i128::from_str_radix(hex, 16).expect("hex default")
                } else {
                    literal
                        .parse()
                        .unwrap_or_else(|_| panic!("{}: default {literal}", self.name))
                };
                format!("{parsed}{}", self.ty.rust())
            }
            Type::Float64 => format!(
                "{}f64",
                default.filter(|text| !text.is_empty()).unwrap_or("0.0")
            ),
            Type::Uuid => "crate::codec::Uuid::ZERO".into(),
            Type::String => {
                let text = if is_null { "" } else { default.unwrap_or("") };
                format!("crate::codec::StrBytes::from_static({text:?})")
            }
            Type::Bytes | Type::Records => "::bytes::Bytes::new()".into(),
            Type::Array(_) => "::std::vec::Vec::new()".into(),
            Type::Struct(_) => "::std::default::Default::default()".into(),
        };
        if self.is_option() {
            // Kafka's records default to null; other nullable fields only when said so.
            if is_null || matches!(self.ty, Type::Records) {
                "::std::option::Option::None".into()
            } else {
                format!("::std::option::Option::Some({value})")
            }
        } else {
            value
        }
    }
}

// ---------------------------------------------------------------- messages

fn module_name(schema: &Schema) -> String {
    snake_case(&schema.name)
}

fn generate_message(out: &mut String, schema: &Schema) {
    let module = module_name(schema);
    writeln!(
        out,
        "/// `{}` ({} schema, versions {}).",
        schema.name,
        schema.kind,
        describe(schema.valid)
    )
    .unwrap();
    writeln!(out, "pub mod {module} {{").unwrap();
    writeln!(
        out,
        "#![allow(clippy::all, unused_variables, unused_mut, unused_imports, non_camel_case_types)]"
    )
    .unwrap();
    let mut seen = BTreeMap::new();
    let mut all = vec![schema.top.clone()];
    all.extend(schema.structs.iter().cloned());
    for def in all {
        if seen.insert(def.name.clone(), ()).is_some() {
            continue;
        }
        let is_top = def.name == schema.name;
        generate_struct(out, schema, &def, is_top);
    }
    writeln!(out, "}}").unwrap();
    writeln!(out, "pub use {module}::{};", schema.name).unwrap();
}

fn describe(versions: Versions) -> String {
    if versions.is_empty() {
        "none".into()
    } else if versions.high == i16::MAX {
        format!("{}+", versions.low)
    } else {
        format!("{}-{}", versions.low, versions.high)
    }
}

fn generate_struct(out: &mut String, schema: &Schema, def: &StructDef, is_top: bool) {
    let context = if is_top { schema.valid } else { Versions::ALL };
    let name = &def.name;
    writeln!(out, "#[derive(Debug, Clone, PartialEq)]").unwrap();
    writeln!(out, "pub struct {name} {{").unwrap();
    for field in &def.fields {
        let mut doc = format!("`{}`: versions {}", field.name, describe(field.versions));
        if !field.nullable.is_empty() {
            let _ = write!(doc, ", nullable {}", describe(field.nullable));
        }
        if let Some((tag, _)) = field.tagged {
            let _ = write!(doc, ", tag {tag}");
        }
        writeln!(out, "    /// {doc}.").unwrap();
        if let Some(about) = &field.about {
            writeln!(out, "    ///\n    /// {}", about.replace('\n', " ")).unwrap();
        }
        writeln!(out, "    pub {}: {},", field.ident, field.rust_type()).unwrap();
    }
    writeln!(
        out,
        "    /// Tagged fields this codec does not know, kept as received."
    )
    .unwrap();
    writeln!(
        out,
        "    pub unknown_tagged_fields: crate::codec::UnknownTaggedFields,"
    )
    .unwrap();
    writeln!(out, "}}").unwrap();

    // Default
    writeln!(
        out,
        "impl ::std::default::Default for {name} {{ fn default() -> Self {{ Self {{"
    )
    .unwrap();
    for field in &def.fields {
        writeln!(out, "    {}: {},", field.ident, field.default_expr()).unwrap();
    }
    writeln!(
        out,
        "    unknown_tagged_fields: crate::codec::UnknownTaggedFields::new(),"
    )
    .unwrap();
    writeln!(out, "}} }} }}").unwrap();

    let flexible = schema.flexible;
    let flexible_condition = flexible.condition(context);

    // Encode
    writeln!(out, "impl crate::Encodable for {name} {{").unwrap();
    writeln!(
        out,
        "fn encode(&self, e: &mut crate::codec::Encoder, version: i16) -> ::std::result::Result<(), crate::codec::EncodeError> {{"
    )
    .unwrap();
    if is_top {
        writeln!(
            out,
            "if !({}) {{ return Err(crate::codec::EncodeError::UnsupportedVersion {{ message: {:?}, version }}); }}",
            schema.valid.condition(Versions::ALL),
            schema.name
        )
        .unwrap();
    }
    writeln!(out, "let flexible: bool = {flexible_condition};").unwrap();
    for field in &def.fields {
        if field.tagged.is_some() {
            continue;
        }
        let present = field.versions.condition(context);
        if present == "false" {
            continue;
        }
        let path = format!("{}.{}", name, field.name);
        writeln!(out, "if {present} {{").unwrap();
        out.push_str(&encode_field(
            field,
            &format!("self.{}", field.ident),
            &path,
            context,
            false,
        ));
        writeln!(out, "}}").unwrap();
    }
    if flexible_condition != "false" {
        writeln!(out, "if flexible {{").unwrap();
        let mut tagged: Vec<&Field> = def
            .fields
            .iter()
            .filter(|field| field.tagged.is_some())
            .collect();
        tagged.sort_by_key(|field| field.tagged.map(|(tag, _)| tag));
        if tagged.is_empty() {
            writeln!(
                out,
                "e.tagged_fields(&[], self.unknown_tagged_fields.as_slice());"
            )
            .unwrap();
        } else {
            writeln!(
                out,
                "let mut known: ::std::vec::Vec<(u32, ::bytes::Bytes)> = ::std::vec::Vec::new();"
            )
            .unwrap();
            for field in tagged {
                let (tag, _) = field.tagged.expect("tagged");
                let present = field.versions.condition(context);
                if present == "false" {
                    continue;
                }
                let path = format!("{}.{}", name, field.name);
                writeln!(
                    out,
                    "if ({present}) && self.{} != {} {{",
                    field.ident,
                    field.default_expr()
                )
                .unwrap();
                writeln!(
                    out,
                    "let mut tagged_encoder = crate::codec::Encoder::with_capacity(64);"
                )
                .unwrap();
                writeln!(out, "{{ let e = &mut tagged_encoder;").unwrap();
                out.push_str(&encode_field(
                    field,
                    &format!("self.{}", field.ident),
                    &path,
                    context,
                    true,
                ));
                writeln!(out, "}}").unwrap();
                writeln!(out, "known.push(({tag}, tagged_encoder.into_bytes()));").unwrap();
                writeln!(out, "}}").unwrap();
            }
            writeln!(
                out,
                "e.tagged_fields(&known, self.unknown_tagged_fields.as_slice());"
            )
            .unwrap();
        }
        writeln!(out, "}}").unwrap();
    }
    writeln!(out, "Ok(())\n}}").unwrap();

    // Decode
    writeln!(
        out,
        "fn decode(d: &mut crate::codec::Decoder<'_>, version: i16) -> ::std::result::Result<Self, crate::codec::DecodeError> {{"
    )
    .unwrap();
    if is_top {
        writeln!(
            out,
            "if !({}) {{ return Err(crate::codec::DecodeError::new({:?}, crate::codec::DecodeErrorKind::UnsupportedVersion(version))); }}",
            schema.valid.condition(Versions::ALL),
            schema.name
        )
        .unwrap();
    }
    writeln!(out, "let flexible: bool = {flexible_condition};").unwrap();
    // Fields are read into locals and the struct is built once at the end:
    // filling a default struct field by field made the CPU reload narrow
    // stores as wide ones (store-forwarding stalls), measurably slower.
    for field in &def.fields {
        writeln!(
            out,
            "let mut {} = {};",
            local_name(field),
            field.default_expr()
        )
        .unwrap();
    }
    writeln!(
        out,
        "let mut unknown_tagged_fields = crate::codec::UnknownTaggedFields::new();"
    )
    .unwrap();
    for field in &def.fields {
        if field.tagged.is_some() {
            continue;
        }
        let present = field.versions.condition(context);
        if present == "false" {
            continue;
        }
        let path = format!("{}.{}", name, field.name);
        writeln!(
            out,
            "if {present} {{ {} = {}; }}",
            local_name(field),
            decode_field(field, &path, context, false)
        )
        .unwrap();
    }
    if flexible_condition != "false" {
        let path = format!("{name}._tagged_fields");
        writeln!(out, "if flexible {{").unwrap();
        writeln!(out, "let count = d.tagged_field_count({path:?})?;").unwrap();
        writeln!(out, "for _ in 0..count {{").unwrap();
        writeln!(out, "let (tag, mut sub) = d.tagged_field({path:?})?;").unwrap();
        writeln!(out, "match tag {{").unwrap();
        for field in def.fields.iter().filter(|field| field.tagged.is_some()) {
            let (tag, _) = field.tagged.expect("tagged");
            let present = field.versions.condition(context);
            if present == "false" {
                continue;
            }
            let field_path = format!("{}.{}", name, field.name);
            writeln!(
                out,
                "{tag} if {present} => {{ let d = &mut sub; {} = {}; }}",
                local_name(field),
                decode_field(field, &field_path, context, true)
            )
            .unwrap();
        }
        writeln!(
            out,
            "_ => unknown_tagged_fields.push(crate::codec::RawTaggedField {{ tag, data: sub.rest() }}),"
        )
        .unwrap();
        writeln!(out, "}}\n}}\n}}").unwrap();
    }
    writeln!(out, "Ok(Self {{").unwrap();
    for field in &def.fields {
        writeln!(out, "    {}: {},", field.ident, local_name(field)).unwrap();
    }
    writeln!(out, "    unknown_tagged_fields,\n}})\n}}\n}}").unwrap();

    if is_top {
        writeln!(out, "impl crate::Message for {name} {{").unwrap();
        writeln!(out, "const NAME: &'static str = {:?};", schema.name).unwrap();
        writeln!(
            out,
            "const VERSIONS: crate::VersionRange = crate::VersionRange {{ min: {}, max: {} }};",
            schema.valid.low, schema.valid.high
        )
        .unwrap();
        let flexible_since = if flexible.is_empty() {
            "None".to_string()
        } else {
            format!("Some({})", flexible.low)
        };
        writeln!(
            out,
            "const FLEXIBLE_SINCE: ::std::option::Option<i16> = {flexible_since};"
        )
        .unwrap();
        writeln!(out, "}}").unwrap();
    }

    // Random values for the round-trip property test.
    writeln!(
        out,
        "#[cfg(test)]\nimpl crate::testing::Random for {name} {{"
    )
    .unwrap();
    writeln!(
        out,
        "fn random(r: &mut crate::testing::Rng, version: i16) -> Self {{"
    )
    .unwrap();
    writeln!(out, "let flexible: bool = {flexible_condition};").unwrap();
    writeln!(out, "let mut this = Self::default();").unwrap();
    for field in &def.fields {
        let present = field.versions.condition(context);
        if present == "false" {
            continue;
        }
        writeln!(
            out,
            "if {present} {{ this.{} = {}; }}",
            field.ident,
            random_field(field, context)
        )
        .unwrap();
    }
    if flexible_condition != "false" {
        writeln!(
            out,
            "if flexible {{ this.unknown_tagged_fields = r.unknown_tagged_fields().into(); }}"
        )
        .unwrap();
    }
    writeln!(out, "this\n}}\n}}").unwrap();
}

/// The local variable a field is decoded into.
fn local_name(field: &Field) -> String {
    format!("field_{}", field.ident.trim_start_matches("r#"))
}

fn flexible_expr(field: &Field, context: Versions, in_tag: bool) -> String {
    if in_tag {
        return "true".into();
    }
    match field.flexible_override {
        Some(versions) => match versions.condition(context).as_str() {
            literal @ ("true" | "false") => literal.to_string(),
            condition => format!("({condition})"),
        },
        None => "flexible".into(),
    }
}

fn encode_field(field: &Field, place: &str, path: &str, context: Versions, in_tag: bool) -> String {
    let flexible = flexible_expr(field, context, in_tag);
    if !field.is_option() {
        return encode_value(&field.ty, &format!("&{place}"), path, &flexible) + "\n";
    }
    let nullable = field.nullable.condition(context);
    let write_null = match &field.ty {
        Type::String => format!("e.null_string({flexible});"),
        Type::Bytes | Type::Records => format!("e.null_bytes({flexible});"),
        Type::Array(_) => format!("e.null_array({flexible});"),
        Type::Struct(_) => "e.i8(-1);".to_string(),
        other => panic!("{path}: nullable {other:?}"),
    };
    let present_marker = if matches!(field.ty, Type::Struct(_)) {
        format!("if {nullable} {{ e.i8(1); }}")
    } else {
        String::new()
    };
    format!(
        "match &{place} {{\n::std::option::Option::None => {{ if {nullable} {{ {write_null} }} else {{ return Err(crate::codec::EncodeError::NullNotAllowed({path:?})); }} }}\n::std::option::Option::Some(value) => {{ {present_marker} {} }}\n}}\n",
        encode_value(&field.ty, "value", path, &flexible)
    )
}

/// `value` is an expression of type `&T`.
fn encode_value(ty: &Type, value: &str, path: &str, flexible: &str) -> String {
    match ty {
        Type::Bool => format!("e.bool(*{value});"),
        Type::Int8 => format!("e.i8(*{value});"),
        Type::Int16 => format!("e.i16(*{value});"),
        Type::Uint16 => format!("e.u16(*{value});"),
        Type::Int32 => format!("e.i32(*{value});"),
        Type::Uint32 => format!("e.u32(*{value});"),
        Type::Int64 => format!("e.i64(*{value});"),
        Type::Float64 => format!("e.f64(*{value});"),
        Type::Uuid => format!("e.uuid({value});"),
        Type::String => format!("e.string({value}, {flexible}, {path:?})?;"),
        Type::Bytes => format!("e.bytes({value}, {flexible}, {path:?})?;"),
        Type::Records => format!("e.records({value}, {flexible}, {path:?})?;"),
        Type::Struct(_) => format!("crate::Encodable::encode({value}, e, version)?;"),
        Type::Array(inner) => format!(
            "{{ let items = {value}; e.array_length(items.len(), {flexible}, {path:?})?; for item in items.iter() {{ {} }} }}",
            encode_value(inner, "item", path, flexible)
        ),
    }
}

fn decode_field(field: &Field, path: &str, context: Versions, in_tag: bool) -> String {
    let flexible = flexible_expr(field, context, in_tag);
    if !field.is_option() {
        return decode_value(&field.ty, path, &flexible);
    }
    let nullable = field.nullable.condition(context);
    let nullable_read = match &field.ty {
        Type::String => format!("d.nullable_string({flexible}, {path:?})?"),
        Type::Bytes | Type::Records => format!("d.nullable_bytes({flexible}, {path:?})?"),
        Type::Array(inner) => format!(
            "match d.nullable_array_length({flexible}, {path:?})? {{ ::std::option::Option::None => ::std::option::Option::None, ::std::option::Option::Some(length) => ::std::option::Option::Some({}) }}",
            decode_elements(inner, path, &flexible)
        ),
        Type::Struct(name) => format!(
            "if d.i8({path:?})? < 0 {{ ::std::option::Option::None }} else {{ ::std::option::Option::Some(<{name} as crate::Encodable>::decode(d, version)?) }}"
        ),
        other => panic!("{path}: nullable {other:?}"),
    };
    format!(
        "if {nullable} {{ {nullable_read} }} else {{ ::std::option::Option::Some({}) }}",
        decode_value(&field.ty, path, &flexible)
    )
}

fn decode_value(ty: &Type, path: &str, flexible: &str) -> String {
    match ty {
        Type::Bool => format!("d.bool({path:?})?"),
        Type::Int8 => format!("d.i8({path:?})?"),
        Type::Int16 => format!("d.i16({path:?})?"),
        Type::Uint16 => format!("d.u16({path:?})?"),
        Type::Int32 => format!("d.i32({path:?})?"),
        Type::Uint32 => format!("d.u32({path:?})?"),
        Type::Int64 => format!("d.i64({path:?})?"),
        Type::Float64 => format!("d.f64({path:?})?"),
        Type::Uuid => format!("d.uuid({path:?})?"),
        Type::String => format!("d.string({flexible}, {path:?})?"),
        Type::Bytes | Type::Records => format!("d.bytes({flexible}, {path:?})?"),
        Type::Struct(name) => format!("<{name} as crate::Encodable>::decode(d, version)?"),
        Type::Array(inner) => {
            format!(
                "{{ let length = d.array_length({flexible}, {path:?})?; {} }}",
                decode_elements(inner, path, flexible)
            )
        }
    }
}

/// Decodes `length` elements; `length` was checked against the remaining input.
fn decode_elements(inner: &Type, path: &str, flexible: &str) -> String {
    format!(
        "{{ let mut items = ::std::vec::Vec::with_capacity(length); for _ in 0..length {{ items.push({}); }} items }}",
        decode_value(inner, path, flexible)
    )
}

fn random_field(field: &Field, context: Versions) -> String {
    let value = random_value(&field.ty);
    if !field.is_option() {
        return value;
    }
    let nullable = field.nullable.condition(context);
    format!(
        "if ({nullable}) && r.chance() {{ ::std::option::Option::None }} else {{ ::std::option::Option::Some({value}) }}"
    )
}

fn random_value(ty: &Type) -> String {
    match ty {
        Type::Bool => "r.bool()".into(),
        Type::Int8 => "r.u64() as i8".into(),
        Type::Int16 => "r.u64() as i16".into(),
        Type::Uint16 => "r.u64() as u16".into(),
        Type::Int32 => "r.u64() as i32".into(),
        Type::Uint32 => "r.u64() as u32".into(),
        Type::Int64 => "r.u64() as i64".into(),
        Type::Float64 => "r.f64()".into(),
        Type::Uuid => "r.uuid()".into(),
        Type::String => "r.string()".into(),
        Type::Bytes | Type::Records => "r.bytes()".into(),
        Type::Struct(name) => format!("<{name} as crate::testing::Random>::random(r, version)"),
        Type::Array(inner) => format!("(0..r.length()).map(|_| {}).collect()", random_value(inner)),
    }
}

fn generate_testing_list(out: &mut String, schemas: &[Schema]) {
    writeln!(
        out,
        "/// Runs `check` for every message type (used by the round-trip property test)."
    )
    .unwrap();
    writeln!(out, "#[cfg(test)]\npub(crate) fn for_each_message(check: &mut impl crate::testing::MessageCheck) {{").unwrap();
    for schema in schemas {
        writeln!(out, "    check.check::<{}>();", schema.name).unwrap();
    }
    writeln!(out, "}}").unwrap();
}

// ---------------------------------------------------------------- API table

fn api_name(schema: &Schema) -> String {
    schema.name.trim_end_matches("Request").to_string()
}

fn generate_api(schemas: &[Schema]) -> String {
    let mut requests: Vec<&Schema> = schemas
        .iter()
        .filter(|schema| schema.kind == "request")
        .collect();
    requests.sort_by_key(|schema| schema.api_key);
    let responses: BTreeMap<i16, &Schema> = schemas
        .iter()
        .filter(|schema| schema.kind == "response")
        .map(|schema| (schema.api_key.expect("response apiKey"), schema))
        .collect();

    let mut out = String::new();
    writeln!(out, "/// Every Kafka API, by its key.").unwrap();
    writeln!(out, "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[repr(i16)]\npub enum ApiKey {{").unwrap();
    for schema in &requests {
        writeln!(
            out,
            "    {} = {},",
            api_name(schema),
            schema.api_key.expect("apiKey")
        )
        .unwrap();
    }
    writeln!(out, "}}").unwrap();

    writeln!(
        out,
        "/// Versions and traits of every API, in key order: the one table that"
    )
    .unwrap();
    writeln!(out, "/// a broker's ApiVersions answer is built from.").unwrap();
    writeln!(out, "pub const API_TABLE: &[ApiInfo] = &[").unwrap();
    for schema in &requests {
        let max_stable = if schema.latest_unstable {
            schema.valid.high - 1
        } else {
            schema.valid.high
        };
        let flexible_since = if schema.flexible.is_empty() {
            "None".to_string()
        } else {
            format!("Some({})", schema.flexible.low)
        };
        writeln!(
            out,
            "    ApiInfo {{ key: ApiKey::{}, name: {:?}, min_version: {}, max_version: {}, max_stable_version: {}, flexible_since: {}, listeners: &{:?} }},",
            api_name(schema),
            api_name(schema),
            schema.valid.low,
            schema.valid.high,
            max_stable,
            flexible_since,
            schema.listeners
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();

    writeln!(out, "impl ApiKey {{").unwrap();
    writeln!(out, "    /// Every key, in order.").unwrap();
    writeln!(out, "    pub const ALL: &'static [ApiKey] = &[").unwrap();
    for schema in &requests {
        writeln!(out, "        ApiKey::{},", api_name(schema)).unwrap();
    }
    writeln!(out, "    ];").unwrap();
    writeln!(out, "    /// The API with this key, if there is one.").unwrap();
    writeln!(
        out,
        "    pub fn from_i16(key: i16) -> ::std::option::Option<ApiKey> {{ match key {{"
    )
    .unwrap();
    for schema in &requests {
        writeln!(
            out,
            "        {} => Some(ApiKey::{}),",
            schema.api_key.expect("apiKey"),
            api_name(schema)
        )
        .unwrap();
    }
    writeln!(out, "        _ => None,\n    }} }}").unwrap();
    writeln!(out, "    /// This API's row of [`API_TABLE`].").unwrap();
    writeln!(
        out,
        "    pub fn info(self) -> &'static ApiInfo {{ match self {{"
    )
    .unwrap();
    for (index, schema) in requests.iter().enumerate() {
        writeln!(
            out,
            "        ApiKey::{} => &API_TABLE[{index}],",
            api_name(schema)
        )
        .unwrap();
    }
    writeln!(out, "    }} }}\n}}").unwrap();

    // Request and response enums.
    for (kind, suffix) in [("Request", "request"), ("Response", "response")] {
        writeln!(out, "/// Any {suffix} body, tagged by its API.").unwrap();
        writeln!(
            out,
            "#[derive(Debug, Clone, PartialEq)]\npub enum {kind}Body {{"
        )
        .unwrap();
        for schema in &requests {
            let type_name = if kind == "Request" {
                schema.name.clone()
            } else {
                responses[&schema.api_key.expect("key")].name.clone()
            };
            writeln!(
                out,
                "    {}(crate::messages::{type_name}),",
                api_name(schema)
            )
            .unwrap();
        }
        writeln!(out, "}}").unwrap();
        writeln!(out, "impl {kind}Body {{").unwrap();
        writeln!(out, "    /// The API this body belongs to.").unwrap();
        writeln!(out, "    pub fn api_key(&self) -> ApiKey {{ match self {{").unwrap();
        for schema in &requests {
            writeln!(
                out,
                "        {kind}Body::{}(_) => ApiKey::{},",
                api_name(schema),
                api_name(schema)
            )
            .unwrap();
        }
        writeln!(out, "    }} }}").unwrap();
        writeln!(out, "    /// Decodes the body of API `key` at `version`.").unwrap();
        writeln!(out, "    pub fn decode(key: ApiKey, d: &mut crate::codec::Decoder<'_>, version: i16) -> ::std::result::Result<Self, crate::codec::DecodeError> {{ Ok(match key {{").unwrap();
        for schema in &requests {
            writeln!(
                out,
                "        ApiKey::{0} => {kind}Body::{0}(crate::Encodable::decode(d, version)?),",
                api_name(schema)
            )
            .unwrap();
        }
        writeln!(out, "    }}) }}").unwrap();
        writeln!(out, "    /// Encodes the body at `version`.").unwrap();
        writeln!(out, "    pub fn encode(&self, e: &mut crate::codec::Encoder, version: i16) -> ::std::result::Result<(), crate::codec::EncodeError> {{ match self {{").unwrap();
        for schema in &requests {
            writeln!(
                out,
                "        {kind}Body::{}(body) => crate::Encodable::encode(body, e, version),",
                api_name(schema)
            )
            .unwrap();
        }
        writeln!(out, "    }} }}\n}}").unwrap();
        writeln!(out, "#[cfg(test)]\nimpl {kind}Body {{").unwrap();
        writeln!(out, "    pub(crate) fn random(key: ApiKey, r: &mut crate::testing::Rng, version: i16) -> Self {{ match key {{").unwrap();
        for schema in &requests {
            writeln!(out, "        ApiKey::{0} => {kind}Body::{0}(crate::testing::Random::random(r, version)),", api_name(schema)).unwrap();
        }
        writeln!(out, "    }} }}\n}}").unwrap();
        for schema in &requests {
            let type_name = if kind == "Request" {
                schema.name.clone()
            } else {
                responses[&schema.api_key.expect("key")].name.clone()
            };
            writeln!(
                out,
                "impl ::std::convert::From<crate::messages::{type_name}> for {kind}Body {{ fn from(body: crate::messages::{type_name}) -> Self {{ {kind}Body::{}(body) }} }}",
                api_name(schema)
            )
            .unwrap();
        }
    }
    for schema in &requests {
        let response = &responses[&schema.api_key.expect("key")].name;
        writeln!(
            out,
            "impl crate::Request for crate::messages::{} {{ const KEY: ApiKey = ApiKey::{}; type Response = crate::messages::{response}; }}",
            schema.name,
            api_name(schema)
        )
        .unwrap();
    }
    out
}

// ---------------------------------------------------------------- error codes

fn generate_error_codes(tsv: &str) -> String {
    let mut rows = Vec::new();
    for line in tsv.lines().skip(1) {
        let mut columns = line.split('\t');
        let (Some(code), Some(name)) = (columns.next(), columns.next()) else {
            continue;
        };
        let code: i16 = code.trim().parse().expect("error code");
        rows.push((code, name.trim().to_string()));
    }
    let variant = |name: &str| -> String {
        name.split('_')
            .map(|word| {
                let lower = word.to_lowercase();
                let mut chars = lower.chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().collect::<String>() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect()
    };
    let mut out = String::new();
    writeln!(out, "/// Kafka's error codes, with Kafka's names.").unwrap();
    writeln!(
        out,
        "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n#[repr(i16)]\npub enum ErrorCode {{"
    )
    .unwrap();
    for (code, name) in &rows {
        writeln!(out, "    /// `{name}`\n    {} = {code},", variant(name)).unwrap();
    }
    writeln!(out, "}}\nimpl ErrorCode {{").unwrap();
    writeln!(
        out,
        "    /// Every error code, in the order Kafka lists them."
    )
    .unwrap();
    writeln!(out, "    pub const ALL: &'static [ErrorCode] = &[").unwrap();
    for (_, name) in &rows {
        writeln!(out, "        ErrorCode::{},", variant(name)).unwrap();
    }
    writeln!(out, "    ];").unwrap();
    writeln!(
        out,
        "    /// The error with this code, if Kafka defines one."
    )
    .unwrap();
    writeln!(
        out,
        "    pub fn from_code(code: i16) -> ::std::option::Option<ErrorCode> {{ match code {{"
    )
    .unwrap();
    for (code, name) in &rows {
        writeln!(out, "        {code} => Some(ErrorCode::{}),", variant(name)).unwrap();
    }
    writeln!(out, "        _ => None,\n    }} }}").unwrap();
    writeln!(
        out,
        "    /// Kafka's name for this error, e.g. `NOT_LEADER_OR_FOLLOWER`."
    )
    .unwrap();
    writeln!(
        out,
        "    pub fn name(self) -> &'static str {{ match self {{"
    )
    .unwrap();
    for (_, name) in &rows {
        writeln!(out, "        ErrorCode::{} => {name:?},", variant(name)).unwrap();
    }
    writeln!(out, "    }} }}\n}}").unwrap();
    out
}
