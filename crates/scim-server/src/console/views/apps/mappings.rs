//! The attribute mapping editor, for users and for groups (Entra's two mappings):
//! mappings in force, edits checked against the source, matching precedence, and for users
//! an expression tester with a preview on a source user.

use super::*;

/// Target attributes every SCIM service provider requires (RFC 7643 §4.1): marked `*` and
/// never left unmapped.
const REQUIRED_USER_ATTRIBUTES: [&str; 1] = ["userName"];
const REQUIRED_GROUP_ATTRIBUTES: [&str; 1] = ["displayName"];

struct MappingRow {
    target: String,
    /// The target without its schema URN (`employeeNumber` for the enterprise extension's
    /// `urn:…:User:employeeNumber`); the full path is the cell's title.
    short: String,
    required: bool,
    kind: &'static str,
    /// The mapping type as the form's `kind` value (for the row's Edit button).
    kind_form: &'static str,
    value: String,
    default: String,
    apply: &'static str,
}

/// An expression's parse error: the text up to the error, and a caret under it.
struct ParseProblem {
    message: String,
    before: String,
    after: String,
    pos: usize,
}

#[derive(Template)]
#[template(path = "console/app_mappings.html")]
struct MappingsPage {
    chrome: Chrome,
    name: String,
    href: String,
    /// The group mappings (else the user mappings).
    groups: bool,
    rows: Vec<MappingRow>,
    matching: Vec<String>,
    columns: Vec<String>,
    preview_user: String,
    /// The previewed user's source id and name (the form may name it by e-mail).
    previewed: Option<(String, String)>,
    /// Source users to preview by (id, name).
    users: Vec<(String, String)>,
    preview: Vec<(String, String)>,
    expression: String,
    expression_value: Option<String>,
    problem: Option<ParseProblem>,
    message: Option<String>,
    error: Option<String>,
}

fn mapping_row(m: &scim_sync::job::Mapping, required: &[&str]) -> MappingRow {
    let (kind, value) = if let Some(src) = &m.source {
        ("Direct", src.clone())
    } else if let Some(c) = &m.constant {
        ("Constant", c.clone())
    } else if let Some(e) = &m.expression {
        ("Expression", e.clone())
    } else {
        ("None", String::new())
    };
    MappingRow {
        required: required.iter().any(|r| r.eq_ignore_ascii_case(&m.target)),
        short: short_target(&m.target).to_string(),
        target: m.target.clone(),
        kind_form: kind_value(kind),
        kind,
        value,
        default: m.default.clone().unwrap_or_default(),
        apply: match m.apply {
            scim_sync::job::Apply::Always => "Always",
            scim_sync::job::Apply::OnCreate => "Only on create",
        },
    }
}

/// A target path without its schema URN: what follows the URN's last `:` (the attribute
/// names of RFC 7643 hold none); other paths as they are.
fn short_target(target: &str) -> &str {
    if target.starts_with("urn:") {
        target.rsplit(':').next().unwrap_or(target)
    } else {
        target
    }
}

/// The `kind` form value for a row's mapping type.
fn kind_value(kind: &str) -> &'static str {
    match kind {
        "Direct" => "direct",
        "Constant" => "constant",
        "Expression" => "expression",
        _ => "none",
    }
}

fn shown_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Deserialize, Default)]
pub struct MappingsForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    default: String,
    #[serde(default)]
    apply: String,
    #[serde(default)]
    expression: String,
    #[serde(default)]
    user: String,
    /// `groups`: the group mappings; anything else the user mappings.
    #[serde(default)]
    object: String,
}

impl MappingsForm {
    fn groups(&self) -> bool {
        self.object == "groups"
    }

    /// The attributes that can never be left unmapped, for the form's object kind.
    fn required(&self) -> &'static [&'static str] {
        if self.groups() {
            &REQUIRED_GROUP_ATTRIBUTES
        } else {
            &REQUIRED_USER_ATTRIBUTES
        }
    }

    fn mapping(&self) -> Result<scim_sync::job::Mapping, String> {
        let target = self.target.trim();
        if target.is_empty() {
            return Err("give the target attribute".into());
        }
        let value = Some(self.value.trim().to_string()).filter(|v| !v.is_empty());
        let mut m = scim_sync::job::Mapping {
            target: target.into(),
            default: Some(self.default.trim().to_string()).filter(|v| !v.is_empty()),
            apply: if self.apply == "on_create" {
                scim_sync::job::Apply::OnCreate
            } else {
                scim_sync::job::Apply::Always
            },
            ..Default::default()
        };
        let need = |v: Option<String>, what: &str| v.ok_or(format!("give the {what}"));
        match self.kind.as_str() {
            "direct" => m.source = Some(need(value, "source attribute")?),
            "constant" => m.constant = Some(need(value, "constant")?),
            "expression" => m.expression = Some(need(value, "expression")?),
            "none" => m.none = true,
            other => {
                return Err(format!(
                    "unknown mapping type '{}'",
                    scim_proto::error::excerpt(other)
                ));
            }
        }
        Ok(m)
    }
}

/// The job with one edit applied to its user mappings or matching order.
fn edited(mut spec: JobSpec, form: &MappingsForm) -> Result<JobSpec, String> {
    let target = form.target.trim();
    let own = if form.groups() {
        &mut spec.groups
    } else {
        &mut spec.users
    };
    // A job with its own full list edits that list; otherwise edits sit on the defaults.
    let on_defaults = own.mappings.is_empty();
    let list = if on_defaults {
        &mut own.extra
    } else {
        &mut own.mappings
    };
    match form.action.as_str() {
        "save" => {
            // An edited row keeps its place.
            scim_sync::mapping::replace_or_push(list, form.mapping()?);
        }
        "remove" => {
            // A default mapping is switched off by a None mapping on top of it.
            if on_defaults {
                let none = scim_sync::job::Mapping {
                    target: target.into(),
                    none: true,
                    ..Default::default()
                };
                scim_sync::mapping::replace_or_push(list, none);
            } else {
                list.retain(|x| !x.target.eq_ignore_ascii_case(target));
            }
        }
        "match-up" | "match-down" | "match-remove" | "match-add" => {
            if own.matching.is_empty() {
                own.matching = vec![form.required()[0].into()];
            }
            let at = own
                .matching
                .iter()
                .position(|x| x.eq_ignore_ascii_case(target));
            match (form.action.as_str(), at) {
                ("match-add", None) => own.matching.push(target.into()),
                ("match-add", Some(_)) => {}
                ("match-up", Some(i)) if i > 0 => own.matching.swap(i, i - 1),
                ("match-down", Some(i)) if i + 1 < own.matching.len() => {
                    own.matching.swap(i, i + 1)
                }
                ("match-remove", Some(i)) => {
                    if own.matching.len() == 1 {
                        return Err("keep at least one matching attribute".into());
                    }
                    own.matching.remove(i);
                }
                (_, None) => return Err(format!("'{target}' is not a matching attribute")),
                _ => {}
            }
        }
        other => {
            return Err(unknown_action(other));
        }
    }
    Ok(spec)
}

impl ParseProblem {
    fn at(expression: &str, e: scim_sync::expr::ParseError) -> Self {
        let chars: Vec<char> = expression.chars().collect();
        let pos = e.pos.min(chars.len());
        ParseProblem {
            message: e.message,
            before: chars[..pos].iter().collect(),
            after: chars[pos..].iter().collect(),
            pos,
        }
    }
}

/// The expression tester: a parse error at its position, else the value for the user.
fn tested(
    expression: &str,
    user: &str,
    value: Option<&Result<Value, String>>,
) -> (Option<String>, Option<ParseProblem>) {
    if expression.is_empty() {
        return (None, None);
    }
    if let Err(e) = scim_sync::expr::parse(expression) {
        return (None, Some(ParseProblem::at(expression, e)));
    }
    let shown = match value {
        _ if user.is_empty() => "parses; choose a source user to see its value".into(),
        Some(Ok(v)) if v.is_null() => "(null)".into(),
        Some(Ok(v)) => shown_value(v),
        Some(Err(e)) => format!("error: {e}"),
        None => "(no value: the user was not found)".into(),
    };
    (Some(shown), None)
}

/// The preview for the form's user and expression; a user the source does not have is an
/// error on the page over the preview without one.
async fn preview(
    state: &AppState,
    spec: &JobSpec,
    record: &scim_core::SyncJobRecord,
    form: &MappingsForm,
) -> ApiResult<(UserPreview, Option<String>)> {
    let (user, expression) = (form.user.trim(), form.expression.trim());
    let sync = state.apps.engine();
    match sync
        .preview_user(spec, Some(record), Some(user), Some(expression))
        .await
    {
        Ok(p) => {
            let error = p.error.clone();
            Ok((p, error))
        }
        Err(e @ SyncError::NotFound(_)) => {
            let p = sync.preview_user(spec, Some(record), None, None).await?;
            Ok((p, Some(e.to_string())))
        }
        Err(e) => Err(e.into()),
    }
}

async fn mappings_page(
    state: &AppState,
    s: &ConsoleSession,
    name: &str,
    status: StatusCode,
    form: &MappingsForm,
    message: Option<String>,
    error: Option<String>,
) -> ApiResult<Response> {
    let (spec, record) = stored(state, name).await?;
    let (preview, problem_shown) = preview(state, &spec, &record, form).await?;
    let (user, expression) = (form.user.trim(), form.expression.trim());
    let (expression_value, problem) = tested(expression, user, preview.expression.as_ref());
    let values = preview.values.iter().flatten();
    let page = MappingsPage {
        chrome: chrome(s, None, "apps"),
        href: app_href(name),
        name: name.to_string(),
        groups: form.groups(),
        rows: if form.groups() {
            let rows = preview.group_mappings.iter();
            rows.map(|m| mapping_row(m, form.required())).collect()
        } else {
            let rows = preview.mappings.iter();
            rows.map(|m| mapping_row(m, form.required())).collect()
        },
        matching: if form.groups() {
            preview.group_matching.clone()
        } else {
            preview.matching.clone()
        },
        columns: preview.columns.clone(),
        preview_user: user.to_string(),
        previewed: preview.user.clone(),
        users: preview.users.clone(),
        preview: values.map(|(k, v)| (k.clone(), shown_value(v))).collect(),
        expression: expression.to_string(),
        expression_value,
        problem,
        message,
        error: error.or(problem_shown),
    };
    html(status, &page)
}

/// `GET /console/apps/{name}/mappings` (`user=` previews a source user, `expression=` tests
/// an expression).
pub async fn app_mappings(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let pairs = pairs(q);
    let form = MappingsForm {
        user: param(&pairs, "user"),
        expression: param(&pairs, "expression"),
        object: param(&pairs, "object"),
        ..Default::default()
    };
    mappings_page(&state, &s, &name, StatusCode::OK, &form, None, None).await
}

/// `POST /console/apps/{name}/mappings`: one edit, checked against the source (the
/// mappings must compile and keep the required attributes) before it is stored.
pub async fn app_mappings_edit(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    Form(form): Form<MappingsForm>,
) -> ApiResult<Response> {
    let (spec, record) = stored(&state, &name).await?;
    let (status, message, error) = match checked(&state, spec, &record, &form).await? {
        Err(e) => (StatusCode::BAD_REQUEST, None, Some(e)),
        Ok(next) => {
            state.apps.save(&next).await?;
            tracing::info!(operator = %s.operator.username, job = %name, action = %form.action, target = %form.target, "app mappings edited in the console");
            let what = format!("mappings {} {}", form.action, form.target);
            super::audit_app(&state, &s, &name, &what).await?;
            (StatusCode::OK, Some(saved(&form)), None)
        }
    };
    mappings_page(&state, &s, &name, status, &form, message, error).await
}

/// The job with the form's edit, checked as a job file is (round-tripped through its stored
/// TOML, compiled against the source) and keeping the required attributes mapped; `Err`
/// inside is what the form shows.
async fn checked(
    state: &AppState,
    spec: JobSpec,
    record: &scim_core::SyncJobRecord,
    form: &MappingsForm,
) -> ApiResult<Result<JobSpec, String>> {
    let next = match edited(spec, form).and_then(|n| n.as_stored().map_err(|e| e.to_string())) {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    let preview = state
        .apps
        .engine()
        .preview_user(&next, Some(record), None, None)
        .await?;
    let (error, list) = if form.groups() {
        (preview.group_error, &preview.group_mappings)
    } else {
        (preview.error, &preview.mappings)
    };
    if let Some(e) = error {
        return Ok(Err(e));
    }
    let mapped = |r: &str| {
        list.iter()
            .any(|m| m.target.eq_ignore_ascii_case(r) && !m.none)
    };
    Ok(match form.required().iter().find(|r| !mapped(r)) {
        Some(r) => Err(format!("{r} * is required by every SCIM app: map it")),
        None => Ok(next),
    })
}

/// What the screen says after an edit was saved.
fn saved(form: &MappingsForm) -> String {
    let target = form.target.trim();
    match form.action.as_str() {
        "save" => format!("Mapping for {target} saved; the next cycle applies it."),
        "remove" => format!("{target} is no longer mapped."),
        _ => "Matching precedence saved.".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_targets_drop_the_schema_urn_only() {
        let cases = [
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
                "employeeNumber",
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "manager.value",
            ),
            ("name.givenName", "name.givenName"),
            (
                "emails[type eq \"work\"].value",
                "emails[type eq \"work\"].value",
            ),
        ];
        for (target, short) in cases {
            assert_eq!(super::short_target(target), short);
        }
    }
}
