//! Scope (all users or members of chosen groups, scoping filters) and the deprovisioning
//! time frames per trigger.

use super::*;

/// Scoping filter operators, as Entra names them (docs/sync.md §2).
const SCOPING_OPERATORS: [&str; 14] = [
    "EQUALS",
    "NOT_EQUALS",
    "INCLUDES",
    "&",
    "!&",
    "ENDS_WITH",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUALS",
    "IS_TRUE",
    "IS_FALSE",
    "IS_NULL",
    "IS_NOT_NULL",
    "REGEX_MATCH",
    "NOT_REGEX_MATCH",
];

/// One deprovisioning trigger's row: its form key, what it means, its current rule.
pub(super) struct TimeFrame {
    key: &'static str,
    pub(super) label: &'static str,
    pub(super) action: &'static str,
    pub(super) after: String,
}

struct FilterRow {
    index: usize,
    title: String,
    clauses: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/app_scope.html")]
struct ScopePage {
    chrome: Chrome,
    name: String,
    href: String,
    all_users: bool,
    nested: bool,
    search: String,
    groups: Vec<(String, bool)>,
    chosen: Vec<String>,
    /// Chosen groups the search hides, carried in the form until it is saved.
    kept: Vec<String>,
    /// The choices shown are not saved yet (a search with ticks changed).
    unsaved: bool,
    filters: Vec<FilterRow>,
    operators: [&'static str; 14],
    columns: Vec<String>,
    frames: Vec<TimeFrame>,
    message: Option<String>,
    error: Option<String>,
}

fn action_key(a: scim_sync::job::DeprovisionAction) -> &'static str {
    use scim_sync::job::DeprovisionAction as A;
    match a {
        A::None => "none",
        A::Disable => "disable",
        A::Delete => "delete",
        A::DisableThenDelete => "disable_then_delete",
    }
}

impl TimeFrame {
    /// The rule in words: "Suspend after 7d", "Do nothing".
    pub(super) fn text(&self) -> String {
        let action = match self.action {
            "none" => return "Do nothing".into(),
            "disable" => "Suspend",
            "delete" => "Delete",
            _ => "Suspend now, delete",
        };
        match self.after.as_str() {
            "0" | "0s" | "immediately" => format!("{action} at once"),
            after => format!("{action} after {after}"),
        }
    }

    /// The four triggers' rows, in the order the screen shows them.
    pub(super) fn all(d: &scim_sync::job::DeprovisionSpec) -> Vec<TimeFrame> {
        let frame = |key, label, r: &scim_sync::job::DeprovisionRule| TimeFrame {
            key,
            label,
            action: action_key(r.action),
            after: r.after.text().to_string(),
        };
        vec![
            frame("out_of_scope", "A user leaves the scope", &d.out_of_scope),
            frame(
                "suspended",
                "A user is suspended at the source",
                &d.suspended,
            ),
            frame("deleted", "A user is deleted at the source", &d.deleted),
            frame(
                "groups",
                "A group leaves the scope or the source",
                &d.groups,
            ),
        ]
    }
}

impl FilterRow {
    fn of(index: usize, f: &scim_sync::job::ScopingFilter) -> Self {
        let clause = |c: &scim_sync::job::ScopingClause| {
            let value = c.value.as_deref().unwrap_or_default();
            format!("{} {} {value}", c.attribute, c.operator.as_str())
                .trim_end()
                .to_string()
        };
        FilterRow {
            index,
            title: f
                .title
                .clone()
                .unwrap_or_else(|| format!("Filter {}", index + 1)),
            clauses: f.clauses.iter().map(clause).collect(),
        }
    }
}

/// The source's groups that contain `search` (case-insensitive, the first 200), each with
/// whether it is chosen.
fn group_choices(all: &[String], chosen: &[String], search: &str) -> Vec<(String, bool)> {
    let needle = search.trim().to_lowercase();
    all.iter()
        .filter(|g| needle.is_empty() || g.to_lowercase().contains(&needle))
        .take(200)
        .map(|g| (g.clone(), chosen.iter().any(|c| c == g)))
        .collect()
}

/// Who is provisioned, as the form says: the radio buttons, and the groups chosen — those
/// the form carried (or, from a form without them, the stored ones) minus the ones shown,
/// plus the ones ticked. A search hides groups; their choice is kept.
fn choices_of(scope: &scim_sync::job::ScopeSpec, form: &[(String, String)]) -> Choices {
    let values = |key: &str| -> Vec<String> {
        form.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let shown = values("shown");
    let mut groups = if param(form, "carried") == "1" {
        values("kept")
    } else {
        scope.groups.clone()
    };
    groups.retain(|g| !shown.contains(g));
    for g in values("group") {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    Choices {
        all_users: param(form, "assignment") != "groups",
        nested: param(form, "nested") == "on",
        groups,
    }
}

/// The scope card's choices.
struct Choices {
    all_users: bool,
    nested: bool,
    groups: Vec<String>,
}

async fn scope_page(
    state: &AppState,
    s: &ConsoleSession,
    name: &str,
    status: StatusCode,
    (search, unsaved): (&str, Option<Choices>),
    message: Option<String>,
    error: Option<String>,
) -> ApiResult<Response> {
    let (spec, record) = stored(state, name).await?;
    let preview = state
        .apps
        .engine()
        .preview_user(&spec, Some(&record), None, None)
        .await?;
    let scope = &spec.scope;
    let is_unsaved = unsaved.is_some();
    let c = unsaved.unwrap_or_else(|| Choices {
        all_users: scope.assignment == scim_sync::job::Assignment::All,
        nested: scope.nested,
        groups: scope.groups.clone(),
    });
    let groups = group_choices(&preview.groups, &c.groups, search);
    let kept = c
        .groups
        .iter()
        .filter(|g| !groups.iter().any(|(s, _)| s == *g))
        .cloned()
        .collect();
    let page = ScopePage {
        chrome: chrome(s, None, "apps"),
        href: app_href(name),
        name: name.to_string(),
        all_users: c.all_users,
        nested: c.nested,
        search: search.to_string(),
        groups,
        chosen: c.groups,
        kept,
        unsaved: is_unsaved,
        filters: scope
            .filters
            .iter()
            .enumerate()
            .map(|(i, f)| FilterRow::of(i, f))
            .collect(),
        operators: SCOPING_OPERATORS,
        columns: preview.columns,
        frames: TimeFrame::all(&spec.deprovision),
        message,
        error,
    };
    html(status, &page)
}

/// `GET /console/apps/{name}/scope` (`q=` searches the source's groups).
pub async fn app_scope(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let search = param(&pairs(q), "q");
    scope_page(
        &state,
        &s,
        &name,
        StatusCode::OK,
        (&search, None),
        None,
        None,
    )
    .await
}

/// `POST /console/apps/{name}/scope`: the form's pairs as sent (checkboxes repeat keys).
pub async fn app_scope_edit(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let (spec, _) = stored(&state, &name).await?;
    let action = param(&form, "action");
    if action == "search" {
        // A search inside the scope form: the ticks made so far stay, unsaved.
        let unsaved = choices_of(&spec.scope, &form);
        let search = param(&form, "q");
        return scope_page(
            &state,
            &s,
            &name,
            StatusCode::OK,
            (&search, Some(unsaved)),
            None,
            None,
        )
        .await;
    }
    let edited = scope_edited(spec, &action, &form);
    let saved = scope_saved(&action);
    let (status, message, error) = save_edit(&state, &s, edited, &action, saved).await?;
    scope_page(&state, &s, &name, status, ("", None), message, error).await
}

/// What the screen says after an edit was saved.
fn scope_saved(action: &str) -> &'static str {
    match action {
        "time-frames" => "Deprovisioning time frames saved; pending timers keep their due times.",
        "add-clause" => "Scoping clause added.",
        "remove-filter" => "Scoping filter removed.",
        _ => "Scope saved; the next cycle applies it.",
    }
}

fn scope_edited(
    mut spec: JobSpec,
    action: &str,
    form: &[(String, String)],
) -> Result<JobSpec, String> {
    use scim_sync::job::{Assignment, DeprovisionAction as A, ScopingClause, ScopingFilter};
    match action {
        "assignment" => {
            let c = choices_of(&spec.scope, form);
            spec.scope.assignment = if c.all_users {
                Assignment::All
            } else {
                Assignment::Groups
            };
            spec.scope.nested = c.nested;
            spec.scope.groups = c.groups;
            if spec.scope.assignment == Assignment::Groups && spec.scope.groups.is_empty() {
                return Err("choose at least one group, or sync all users".into());
            }
        }
        "add-clause" => {
            let attribute = param(form, "attribute");
            let operator = param(form, "operator");
            if attribute.is_empty() {
                return Err("give the source attribute the clause tests".into());
            }
            let clause = ScopingClause {
                attribute,
                operator: scim_sync::scope::Operator::parse(&operator)?,
                value: Some(param(form, "value")).filter(|v| !v.is_empty()),
            };
            clause.check()?;
            match param(form, "filter").parse::<usize>() {
                Ok(i) if i < spec.scope.filters.len() => spec.scope.filters[i].clauses.push(clause),
                _ => spec.scope.filters.push(ScopingFilter {
                    title: Some(param(form, "title")).filter(|t| !t.is_empty()),
                    clauses: vec![clause],
                }),
            }
        }
        "remove-filter" => {
            let i = param(form, "filter")
                .parse::<usize>()
                .ok()
                .filter(|i| *i < spec.scope.filters.len())
                .ok_or("no such scoping filter")?;
            spec.scope.filters.remove(i);
        }
        "time-frames" => {
            let d = &mut spec.deprovision;
            for (key, rule) in [
                ("out_of_scope", &mut d.out_of_scope),
                ("suspended", &mut d.suspended),
                ("deleted", &mut d.deleted),
                ("groups", &mut d.groups),
            ] {
                rule.action = match param(form, &format!("{key}_action")).as_str() {
                    "none" => A::None,
                    "disable" => A::Disable,
                    "delete" => A::Delete,
                    "disable_then_delete" => A::DisableThenDelete,
                    other => {
                        return Err(format!(
                            "unknown deprovisioning action '{}'",
                            scim_proto::error::excerpt(other)
                        ));
                    }
                };
                let after = param(form, &format!("{key}_after"));
                rule.after =
                    scim_sync::duration::Dur::parse(&after).map_err(|e| format!("{key}: {e}"))?;
            }
        }
        other => {
            return Err(unknown_action(other));
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The groups a search hides keep their choice; those shown are as ticked.
    #[test]
    fn choices_survive_a_search() {
        let scope = scim_sync::job::ScopeSpec {
            groups: vec!["Sales".into(), "Ops".into()],
            ..Default::default()
        };
        // A form from before the carried choices: the stored ones stand for the hidden.
        let c = choices_of(
            &scope,
            &form(&[
                ("assignment", "groups"),
                ("shown", "Ops"),
                ("shown", "Eng"),
                ("group", "Eng"),
            ]),
        );
        assert_eq!(c.groups, ["Sales", "Eng"]);
        assert!(!c.all_users);
        // Carried: what the page kept (Eng ticked before the search), not what is stored.
        let c = choices_of(
            &scope,
            &form(&[
                ("carried", "1"),
                ("kept", "Eng"),
                ("shown", "Sales"),
                ("group", "Sales"),
                ("nested", "on"),
            ]),
        );
        assert_eq!(c.groups, ["Eng", "Sales"]);
        assert!(c.all_users && c.nested);
        // Unticked while shown: dropped.
        let c = choices_of(&scope, &form(&[("carried", "1"), ("shown", "Sales")]));
        assert!(c.groups.is_empty());
    }
}
