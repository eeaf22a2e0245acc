//! The attribute mapping editor: mappings in force, edits checked against the source,
//! matching precedence, and an expression tester with a preview on a source user.

use super::*;

/// Target attributes every SCIM service provider requires (RFC 7643 §4.1): marked `*` and
/// never left unmapped.
const REQUIRED_USER_ATTRIBUTES: [&str; 1] = ["userName"];

struct MappingRow {
    target: String,
    required: bool,
    kind: &'static str,
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
    rows: Vec<MappingRow>,
    matching: Vec<String>,
    columns: Vec<String>,
    preview_user: String,
    preview: Vec<(String, String)>,
    expression: String,
    expression_value: Option<String>,
    problem: Option<ParseProblem>,
    message: Option<String>,
    error: Option<String>,
}

fn mapping_row(m: &scim_sync::job::Mapping) -> MappingRow {
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
        required: REQUIRED_USER_ATTRIBUTES
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&m.target)),
        target: m.target.clone(),
        kind,
        value,
        default: m.default.clone().unwrap_or_default(),
        apply: match m.apply {
            scim_sync::job::Apply::Always => "Always",
            scim_sync::job::Apply::OnCreate => "Only on create",
        },
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
}

impl MappingsForm {
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
    let own = &mut spec.users;
    // A job with its own full list edits that list; otherwise edits sit on the defaults.
    let on_defaults = own.mappings.is_empty();
    let list = if on_defaults {
        &mut own.extra
    } else {
        &mut own.mappings
    };
    match form.action.as_str() {
        "save" => {
            let m = form.mapping()?;
            list.retain(|x| !x.target.eq_ignore_ascii_case(&m.target));
            list.push(m);
        }
        "remove" => {
            list.retain(|x| !x.target.eq_ignore_ascii_case(target));
            // A default mapping is switched off by a None mapping on top of it.
            if on_defaults {
                list.push(scim_sync::job::Mapping {
                    target: target.into(),
                    none: true,
                    ..Default::default()
                });
            }
        }
        "match-up" | "match-down" | "match-remove" | "match-add" => {
            if own.matching.is_empty() {
                own.matching = vec!["userName".into()];
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
    let user = form.user.trim();
    let expression = form.expression.trim().to_string();
    let (preview, mut error) = match state
        .sync
        .preview_user(&spec, Some(&record), Some(user), Some(&expression))
        .await
    {
        Ok(p) => (p, error),
        Err(e @ SyncError::NotFound(_)) => (
            state
                .sync
                .preview_user(&spec, Some(&record), None, None)
                .await?,
            error.or(Some(e.to_string())),
        ),
        Err(e) => return Err(e.into()),
    };
    if error.is_none() {
        error = preview.error.clone();
    }
    // The expression tester: a parse error at its position, else the value for the user.
    let (mut expression_value, mut problem) = (None, None);
    if !expression.is_empty() {
        match scim_sync::expr::parse(&expression) {
            Err(e) => {
                let chars: Vec<char> = expression.chars().collect();
                let pos = e.pos.min(chars.len());
                problem = Some(ParseProblem {
                    message: e.message,
                    before: chars[..pos].iter().collect(),
                    after: chars[pos..].iter().collect(),
                    pos,
                });
            }
            Ok(_) if user.is_empty() => {
                expression_value = Some("parses; choose a source user to see its value".into());
            }
            Ok(_) => {
                expression_value = Some(match &preview.expression {
                    Some(Ok(v)) if v.is_null() => "(null)".into(),
                    Some(Ok(v)) => shown_value(v),
                    Some(Err(e)) => format!("error: {e}"),
                    None => "(no value: the user was not found)".into(),
                });
            }
        }
    }
    html(
        status,
        &MappingsPage {
            chrome: chrome(s, None, "apps"),
            href: app_href(name),
            name: name.to_string(),
            rows: preview.mappings.iter().map(mapping_row).collect(),
            matching: preview.matching.clone(),
            columns: preview.columns.clone(),
            preview_user: user.to_string(),
            preview: preview
                .values
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), shown_value(v)))
                .collect(),
            expression,
            expression_value,
            problem,
            message,
            error,
        },
    )
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
    let refuse = |e: String| {
        mappings_page(
            &state,
            &s,
            &name,
            StatusCode::BAD_REQUEST,
            &form,
            None,
            Some(e),
        )
    };
    let next = match edited(spec, &form) {
        Ok(n) => n,
        Err(e) => return refuse(e).await,
    };
    // The same checks as a job file (round-tripped through its stored TOML).
    let next = match next.as_stored() {
        Ok(n) => n,
        Err(e) => return refuse(e.to_string()).await,
    };
    let preview = state
        .sync
        .preview_user(&next, Some(&record), None, None)
        .await?;
    if let Some(e) = preview.error {
        return refuse(e).await;
    }
    for r in REQUIRED_USER_ATTRIBUTES {
        let mapped = preview
            .mappings
            .iter()
            .any(|m| m.target.eq_ignore_ascii_case(r) && !m.none);
        if !mapped {
            return refuse(format!("{r} * is required by every SCIM app: map it")).await;
        }
    }
    state.sync.import(&next).await?;
    tracing::info!(operator = %s.operator.username, job = %name, action = %form.action, target = %form.target, "app mappings edited in the console");
    let message = match form.action.as_str() {
        "save" => format!(
            "Mapping for {} saved; the next cycle applies it.",
            form.target.trim()
        ),
        "remove" => format!("{} is no longer mapped.", form.target.trim()),
        _ => "Matching precedence saved.".into(),
    };
    mappings_page(
        &state,
        &s,
        &name,
        StatusCode::OK,
        &form,
        Some(message),
        None,
    )
    .await
}
