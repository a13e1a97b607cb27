//! The API model every later stage reads: operations, parameters, bodies, security.
//! It is our own shape, independent of the OpenAPI version or crate it was read with.

use serde::Serialize;
use std::collections::BTreeMap;

/// Which family of description a document was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SpecFamily {
    Swagger20,
    OpenApi30,
    OpenApi31,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
    Patch,
    Head,
    Options,
    Trace,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Get,
        Method::Put,
        Method::Post,
        Method::Delete,
        Method::Patch,
        Method::Head,
        Method::Options,
        Method::Trace,
    ];

    /// Lower-case key as used under an OpenAPI path item.
    pub fn key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Patch => "patch",
            Method::Head => "head",
            Method::Options => "options",
            Method::Trace => "trace",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
        }
    }

    /// Safe methods never change state on a well-behaved server.
    pub fn is_safe(self) -> bool {
        matches!(
            self,
            Method::Get | Method::Head | Method::Options | Method::Trace
        )
    }

    pub fn parse(text: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(text))
    }
}

display_as_str!(Method);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamLocation {
    Path,
    Query,
    Header,
    Cookie,
}

/// A JSON Schema as found in the document. Any `$ref` inside it is a local pointer
/// (`#/...`) into [`Api::document`]; resolve it with [`Api::resolve`].
pub type Schema = serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct Parameter {
    pub name: String,
    pub location: ParamLocation,
    pub required: bool,
    pub schema: Option<Schema>,
    pub example: Option<serde_json::Value>,
    /// Set when this parameter carries an object identifier: the resource it names.
    pub id_resource: Option<String>,
}

/// A top-level property of an operation's JSON request body that names an object by its
/// ID (`invoice_id`, `invoiceId`, or an array such as `ticket_ids: [..]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BodyId {
    pub name: String,
    /// The resource it names, spelled like [`Parameter::id_resource`].
    pub resource: String,
    /// The property is an array of IDs.
    pub array: bool,
    /// The IDs are JSON numbers (else strings).
    pub integer: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MediaType {
    pub content_type: String,
    pub schema: Option<Schema>,
    pub example: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestBody {
    pub required: bool,
    pub content: Vec<MediaType>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Response {
    /// As written: `200`, `2XX`, `default`.
    pub status: String,
    pub content: Vec<MediaType>,
}

/// Who may call an operation according to the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "alternatives")]
pub enum Security {
    /// No security requirement (or an explicit empty list / `{}` alternative).
    Public,
    /// Any one of these alternatives; each alternative names the schemes it needs together.
    Required(Vec<Vec<String>>),
}

#[derive(Debug, Clone, Serialize)]
pub struct SecurityScheme {
    /// `http`, `apiKey`, `oauth2`, `openIdConnect`, `mutualTLS`, or as written.
    pub kind: String,
    /// For `http`: `bearer`, `basic`, ...
    pub scheme: Option<String>,
    /// For `apiKey`: the parameter name and where it goes.
    pub param_name: Option<String>,
    pub location: Option<ParamLocation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub method: Method,
    /// The path template exactly as written in the document, e.g. `/invoices/{invoiceId}`.
    pub path: String,
    pub operation_id: Option<String>,
    pub summary: Option<String>,
    pub tags: Vec<String>,
    /// Path-level and operation-level parameters, merged (operation wins).
    pub parameters: Vec<Parameter>,
    pub request_body: Option<RequestBody>,
    pub responses: Vec<Response>,
    pub security: Security,
    /// ID-carrying properties of the JSON request body, in schema order.
    pub body_ids: Vec<BodyId>,
    /// The description marks the operation `x-rolegrid-safe: true`: a read sent with an
    /// unsafe method (a search or a report rendered from a POST body). The planner then
    /// treats it as a read: sent without `allow_mutations`, judged without a read-back.
    pub declared_safe: bool,
}

impl Operation {
    /// Safe by method, or declared safe by the description.
    pub fn is_read_only(&self) -> bool {
        self.method.is_safe() || self.declared_safe
    }

    /// `METHOD /path/{template}`: the name used in matrices and reports.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The resources this operation's identifiers name: its ID parameters', then its
    /// body IDs' (repeats kept).
    pub fn id_resources(&self) -> impl Iterator<Item = &str> {
        self.parameters
            .iter()
            .filter_map(|p| p.id_resource.as_deref())
            .chain(self.body_ids.iter().map(|b| b.resource.as_str()))
    }

    pub fn path_params(&self) -> impl Iterator<Item = &Parameter> {
        self.parameters
            .iter()
            .filter(|p| p.location == ParamLocation::Path)
    }

    /// The parameter that carries the ID of the object this operation names, and its
    /// resource: the path's last ID parameter (`{note_id}` in
    /// `/projects/{project_id}/notes/{note_id}`; the ones before it name parents), else
    /// the first query parameter that carries one.
    pub fn id_param(&self) -> Option<(&Parameter, &str)> {
        fn with_resource(p: &Parameter) -> Option<(&Parameter, &str)> {
            Some((p, p.id_resource.as_deref()?))
        }
        let last_in_path = self
            .path_params()
            .filter_map(with_resource)
            .max_by_key(|(p, _)| self.path.find(&format!("{{{}}}", p.name)));
        last_in_path.or_else(|| {
            self.parameters
                .iter()
                .filter(|p| p.location == ParamLocation::Query)
                .find_map(with_resource)
        })
    }

    /// The first request-body media type that is JSON, if any.
    pub fn json_body(&self) -> Option<&MediaType> {
        self.request_body
            .as_ref()
            .and_then(|b| b.content.iter().find(|m| m.content_type.contains("json")))
    }
}

/// The whole description, normalised.
#[derive(Debug, Clone, Serialize)]
pub struct Api {
    pub family: SpecFamily,
    /// The version string as written (`3.0.3`, `2.0`, ...).
    pub version: String,
    pub title: String,
    /// Base URLs or paths as written by `servers` (or `host` + `basePath` + `schemes`).
    pub servers: Vec<String>,
    pub operations: Vec<Operation>,
    pub security_schemes: BTreeMap<String, SecurityScheme>,
    /// For each resource name used in `Parameter::id_resource`: indexes into `operations`
    /// of the operations that list such objects (collections to harvest IDs from).
    pub collections: BTreeMap<String, Vec<usize>>,
    /// Each resource an identifier names: its ID fields, producers and creates.
    pub resources: BTreeMap<String, super::links::Resource>,
    /// The normalised document; every `$ref` in a [`Schema`] points into it.
    #[serde(skip)]
    pub document: serde_json::Value,
}

impl Api {
    /// Follows local `$ref` chains (bounded, so a cycle cannot loop) and returns the target.
    pub fn resolve<'a>(&'a self, schema: &'a Schema) -> &'a Schema {
        let mut current = schema;
        for _ in 0..32 {
            let Some(pointer) = current.get("$ref").and_then(|r| r.as_str()) else {
                return current;
            };
            let Some(local) = pointer.strip_prefix('#') else {
                return current;
            };
            match self.document.pointer(local) {
                Some(target) => current = target,
                None => return current,
            }
        }
        current
    }

    /// The path part of the first server (`/api/v1` from `/api/v1` or from
    /// `https://host/api/v1`): requests go to the engagement's target under it.
    pub fn base_path(&self) -> String {
        let Some(server) = self.servers.first() else {
            return String::new();
        };
        let path = if server.starts_with('/') {
            server.clone()
        } else {
            url::Url::parse(server)
                .map(|u| u.path().to_string())
                .unwrap_or_default()
        };
        if path.contains('{') {
            // A templated server (`/{version}`) cannot be filled in: use the target as is.
            return String::new();
        }
        path.trim_end_matches('/').to_string()
    }

    /// The fields that hold `resource`'s identifier in answers, most telling first.
    pub fn id_fields(&self, resource: &str) -> Vec<String> {
        self.resources
            .get(resource)
            .map(|r| r.id_fields.clone())
            .unwrap_or_else(|| {
                super::links::GENERIC_ID_FIELDS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
    }

    /// The producer of `resource` that `op` is, when it is one.
    pub fn producer(&self, resource: &str, op: usize) -> Option<&super::links::Producer> {
        self.resources
            .get(resource)?
            .producers
            .iter()
            .find(|p| p.op == op)
    }

    pub fn operation(&self, key: &str) -> Option<&Operation> {
        self.operations
            .iter()
            .find(|op| op.key() == key || op.operation_id.as_deref() == Some(key))
    }
}
