//! New app: the form (source, admin credentials with Test connection, notification e-mail)
//! that stores a job turned off. An uploaded CSV or JSON file is stored with the app in the
//! database (`SyncStore::put_source_file`), so every node reads the same file.

use super::new_source::{self, NO_COLUMN, SourceColumns, picked};
use super::*;
use crate::console::upload::{UploadForm, UploadedFile};
use scim_core::SourceFile;
use scim_sync::source::file_sample::Picks;

#[derive(Deserialize, Default, Clone)]
pub struct NewAppForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    source_kind: String,
    #[serde(default)]
    source_path: String,
    #[serde(default)]
    source_id: String,
    #[serde(default)]
    source_groups: String,
    /// The status column (`(none)`: none; empty: not chosen yet).
    #[serde(default)]
    source_status: String,
    #[serde(default)]
    source_tenant: String,
    /// ldap: `ldap://` or `ldaps://` URL; scim: the source server's base URL.
    #[serde(default)]
    source_url: String,
    #[serde(default)]
    source_bind_dn: String,
    #[serde(default)]
    source_base_dn: String,
    /// ldap: StartTLS on an `ldap://` URL (`on`), the CA file (PEM, in the source folder),
    /// the user and group filters, the id attribute, the disabled rule, change detection
    /// (`auto`, `syncrepl`, `poll`) and the full-scan interval; empty: the defaults.
    #[serde(default)]
    source_starttls: String,
    #[serde(default)]
    source_tls_ca_file: String,
    #[serde(default)]
    source_user_filter: String,
    #[serde(default)]
    source_group_filter: String,
    #[serde(default)]
    source_id_attribute: String,
    #[serde(default)]
    source_disabled: String,
    #[serde(default)]
    source_change_detection: String,
    #[serde(default)]
    source_full_scan: String,
    /// ldap: the bind password; scim: the bearer token. Sealed on save, never shown again.
    #[serde(default)]
    source_secret: String,
    /// google: the service account's JSON key. Sealed on save, never shown again.
    #[serde(default)]
    source_key: String,
    /// google: the administrator the service account acts as.
    #[serde(default)]
    source_subject: String,
    /// google: a domain (empty: the whole customer).
    #[serde(default)]
    source_domain: String,
    /// entra: the Directory (tenant) ID and the Application (client) ID.
    #[serde(default)]
    source_tenant_id: String,
    #[serde(default)]
    source_client_id: String,
    /// entra: the client secret. Sealed on save, never shown again.
    #[serde(default)]
    source_client_secret: String,
    /// google, entra: the API's base URL, only behind a proxy (empty: the vendor's).
    #[serde(default)]
    source_api_url: String,
    #[serde(default)]
    target_url: String,
    #[serde(default)]
    target_tenant: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    /// The `source_file` input's file (source kind `upload`): not a text field.
    #[serde(skip)]
    upload: Option<UploadedFile>,
}

impl NewAppForm {
    /// The target URL with the `{tenant-name}` placeholder filled in (the Google guide's
    /// endpoint URL).
    fn target(&self) -> String {
        self.target_url
            .trim()
            .replace("{tenant-name}", self.target_tenant.trim())
    }

    /// The job the form describes, checked as a job file would be.
    fn spec(&self) -> Result<JobSpec, SyncError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(SyncError::Job("give the app a name".into()));
        }
        if self.target_url.contains("{tenant-name}") && self.target_tenant.trim().is_empty() {
            return Err(SyncError::Job(
                "the target URL has a {tenant-name} placeholder: fill in the tenant name".into(),
            ));
        }
        let source = self.source()?;
        let mut job = json!({
            "name": name,
            "source": source,
            "target": {"url": self.target(), "token": self.token.trim()},
        });
        let emails: Vec<&str> = self
            .email
            .split([',', ' '])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if !emails.is_empty() {
            job["notify"] = json!({"email": emails});
        }
        JobSpec::from_value(job)
    }

    /// The job's `[source]` table from the source step of the form.
    fn source(&self) -> Result<Value, SyncError> {
        let text = |v: &str| Some(v.trim()).filter(|v| !v.is_empty()).map(String::from);
        let mut s = match self.source_kind.as_str() {
            "upload" => {
                let f = self.uploaded()?;
                json!({
                    "kind": f.kind,
                    "upload": f.name,
                    "id": picked(&self.source_id),
                    "groups": picked(&self.source_groups),
                    "status": picked(&self.source_status),
                })
            }
            "csv" | "json" => json!({
                "kind": self.source_kind,
                "path": self.source_path.trim(),
                "id": picked(&self.source_id),
                "groups": picked(&self.source_groups),
                "status": picked(&self.source_status),
            }),
            "tenant" => json!({"kind": "tenant", "tenant": self.source_tenant.trim()}),
            "ldap" => json!({
                "kind": "ldap",
                "url": text(&self.source_url),
                "bind_dn": text(&self.source_bind_dn),
                "base_dn": text(&self.source_base_dn),
                "password": text(&self.source_secret),
                "starttls": (self.source_starttls == "on").then_some(true),
                "tls_ca_file": text(&self.source_tls_ca_file),
                "user_filter": text(&self.source_user_filter),
                "group_filter": text(&self.source_group_filter),
                "id": text(&self.source_id_attribute),
                "disabled": text(&self.source_disabled),
                "change_detection": text(&self.source_change_detection)
                    .filter(|c| c != "auto"),
                "full_scan": text(&self.source_full_scan),
            }),
            "scim" => json!({
                "kind": "scim",
                "url": text(&self.source_url),
                "token": text(&self.source_secret),
            }),
            "google" => json!({
                "kind": "google",
                "credentials": text(&self.source_key),
                "subject": self.source_subject.trim(),
                "domain": text(&self.source_domain),
                "api_url": text(&self.source_api_url),
            }),
            "entra" => json!({
                "kind": "entra",
                "tenant_id": self.source_tenant_id.trim(),
                "client_id": self.source_client_id.trim(),
                "client_secret": text(&self.source_client_secret),
                "authority_url": text(&self.source_api_url),
                "graph_url": text(&self.source_api_url),
            }),
            other => {
                return Err(SyncError::Job(format!(
                    "choose a source (a CSV or JSON file, LDAP, a SCIM server, a scimd tenant, Google Workspace or Entra ID), not '{}'",
                    scim_proto::error::excerpt(other)
                )));
            }
        };
        // Unset fields are left out, so the job's own defaults and checks apply.
        if let Some(o) = s.as_object_mut() {
            o.retain(|_, v| !v.is_null());
        }
        Ok(s)
    }

    /// Any of the LDAP step's advanced settings is filled (its section is shown open).
    fn ldap_advanced_set(&self) -> bool {
        [
            &self.source_starttls,
            &self.source_tls_ca_file,
            &self.source_user_filter,
            &self.source_group_filter,
            &self.source_id_attribute,
            &self.source_disabled,
            &self.source_full_scan,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
            || !matches!(self.source_change_detection.as_str(), "" | "auto")
    }

    /// The uploaded file, checked.
    fn uploaded(&self) -> Result<Upload, SyncError> {
        let f = self.upload.as_ref().ok_or_else(|| {
            SyncError::Job("choose the CSV or JSON file to upload (again after an error: browsers do not keep it)".into())
        })?;
        Upload::of(f)
    }

    /// The uploaded file for the tests, which read it from the form (it is stored only with
    /// the app). `spec()` has already refused a missing or unreadable one.
    fn in_hand(&self) -> Option<SourceFile> {
        let upload = (self.source_kind == "upload").then(|| self.uploaded().ok())??;
        Some(upload.stored())
    }

    /// A job with only the source step filled in, for "Test source": the target is a
    /// placeholder that is never contacted.
    fn source_only(&self) -> Result<JobSpec, SyncError> {
        let name = Some(self.name.trim()).filter(|n| !n.is_empty());
        JobSpec::from_value(json!({
            "name": name.unwrap_or("new-app"),
            "source": self.source()?,
            "target": {"url": "http://127.0.0.1/", "token": "-"},
        }))
    }
}

#[derive(Template)]
#[template(path = "console/app_new.html")]
struct NewAppPage {
    chrome: Chrome,
    form: NewAppForm,
    tenants: Vec<String>,
    checks: Vec<Check>,
    /// A CSV or JSON file as Test source described it.
    columns: Option<SourceColumns>,
    /// Which step's checks `checks` are: "source" (Test source) or "target".
    tested: &'static str,
    error: Option<String>,
}

async fn new_app_page(
    state: &AppState,
    s: &ConsoleSession,
    status: StatusCode,
    form: NewAppForm,
    (checks, columns): (Vec<Check>, Option<SourceColumns>),
    error: Option<String>,
) -> ApiResult<Response> {
    let tenants = state
        .services
        .tenants
        .list()
        .await?
        .into_iter()
        .map(|t| t.slug)
        .collect();
    html(
        status,
        &NewAppPage {
            chrome: chrome(s, None, "apps"),
            tested: match form.action.as_str() {
                "test-source" => "source",
                _ => "target",
            },
            form,
            tenants,
            checks,
            columns,
            error,
        },
    )
}

/// The form again with why the engine refused it; its own database failing is a 500.
async fn refused(
    state: &AppState,
    s: &ConsoleSession,
    form: NewAppForm,
    e: SyncError,
) -> ApiResult<Response> {
    let e = AppError::from(e);
    if e.status().is_server_error() {
        return Err(e);
    }
    let status = e.status();
    new_app_page(
        state,
        s,
        status,
        form,
        Default::default(),
        Some(e.error.detail),
    )
    .await
}

/// A form the engine refuses, shown as a failed check where a test was asked for.
fn settings_check(e: SyncError) -> Check {
    Check {
        name: "app settings".into(),
        ok: false,
        detail: e.to_string(),
        untested: false,
    }
}

/// `GET /console/apps/new`.
pub async fn new_app_form(State(state): AppStateRef, s: ConsoleSession) -> ApiResult<Response> {
    let form = NewAppForm {
        source_kind: "upload".into(),
        target_url: format!("{}/t/{{tenant-name}}/scim/v2", state.config.public_url),
        ..Default::default()
    };
    new_app_page(&state, &s, StatusCode::OK, form, Default::default(), None).await
}

/// `POST /console/apps/new`: `test-source` reads the source once; `test` runs every
/// connection check; `create` stores the app
/// (off: the operator turns it on from its page after provisioning a user on demand).
pub async fn new_app(
    State(state): AppStateRef,
    s: ConsoleSession,
    UploadForm { mut form, files }: UploadForm<NewAppForm>,
) -> ApiResult<Response> {
    let mut files = files;
    // Google's service-account key as its downloaded JSON file, when none is pasted.
    if let Some(i) = files.iter().position(|f| f.field == "source_key_file") {
        let key = files.remove(i);
        if form.source_key.trim().is_empty() && !key.content.is_empty() {
            match std::str::from_utf8(&key.content) {
                Ok(text) => form.source_key = text.to_string(),
                Err(_) => {
                    let e = SyncError::Job(format!(
                        "{} is not the service account's JSON key (not UTF-8 text): download the key as JSON",
                        key.name
                    ));
                    return refused(&state, &s, form, e).await;
                }
            }
        }
    }
    form.upload = files.into_iter().find(|f| f.field == "source_file");
    if form.action == "test-source" {
        let tested = test_source(&state, &mut form).await;
        return new_app_page(&state, &s, StatusCode::OK, form, tested, None).await;
    }
    let spec = match form.spec() {
        Ok(spec) => spec,
        // Test connection (an htmx swap of the checks only) says what is wrong as a check.
        Err(e) if form.action == "test" => {
            let checks = vec![settings_check(e)];
            return new_app_page(&state, &s, StatusCode::OK, form, (checks, None), None).await;
        }
        Err(e) => return refused(&state, &s, form, e).await,
    };
    match form.action.as_str() {
        "test" => {
            let checks = match state.apps.test(&spec, form.in_hand()).await {
                Ok(checks) => checks,
                Err(e) => vec![settings_check(e)],
            };
            new_app_page(&state, &s, StatusCode::OK, form, (checks, None), None).await
        }
        "create" => {
            if let Err(e) = status_chosen(&state, &form, &spec).await {
                return refused(&state, &s, form, e).await;
            }
            // The app and its file in one transaction: never one without the other.
            let file = if form.source_kind == "upload" {
                match form.uploaded() {
                    Ok(f) => Some(f.stored()),
                    Err(e) => return refused(&state, &s, form, e).await,
                }
            } else {
                None
            };
            match state.apps.create(&spec, file).await {
                Ok(()) => {}
                Err(SyncError::Conflict(e)) => {
                    return new_app_page(
                        &state,
                        &s,
                        StatusCode::CONFLICT,
                        form,
                        Default::default(),
                        Some(e),
                    )
                    .await;
                }
                Err(e) => return refused(&state, &s, form, e).await,
            }
            tracing::info!(operator = %s.operator.username, job = %spec.name, "app created in the console");
            super::audit_app(&state, &s, &spec.name, "created").await?;
            Ok(Redirect::to(&format!("{}?created=1", app_href(&spec.name))).into_response())
        }
        other => Err(AppError::new(400, unknown_action(other))),
    }
}

impl NewAppForm {
    fn is_file(&self) -> bool {
        matches!(self.source_kind.as_str(), "upload" | "csv" | "json")
    }

    /// The id, groups and status columns as chosen.
    fn picks(&self) -> Picks {
        Picks {
            id: picked(&self.source_id),
            groups: picked(&self.source_groups),
            status: picked(&self.source_status),
        }
    }

    /// Fills the pickers not chosen yet with the columns they look like.
    fn fill(&mut self, p: &Picks) {
        new_source::fill(
            &mut self.source_id,
            &mut self.source_groups,
            &mut self.source_status,
            p,
        );
    }
}

/// `test-source`: the source read once; a file is also described and its pickers filled.
async fn test_source(
    state: &AppState,
    form: &mut NewAppForm,
) -> (Vec<Check>, Option<SourceColumns>) {
    let mut sample = None;
    if form.is_file() {
        // Described whatever its id column is: with none chosen yet, a stand-in that is
        // never read.
        let unchosen = NewAppForm {
            source_id: picked(&form.source_id).unwrap_or_else(|| "-".into()),
            ..form.clone()
        };
        let described = match unchosen.source_only() {
            Ok(spec) => state.apps.sample_file(&spec, form.in_hand()).await,
            Err(e) => Err(e),
        };
        match described {
            Ok(s) => {
                form.fill(&s.suggest());
                sample = Some((s, unchosen));
            }
            Err(e) => return (vec![settings_check(e)], None),
        }
    }
    let (checks, spec) = match form.source_only() {
        Ok(spec) => match state.apps.test_source(&spec, form.in_hand()).await {
            Ok(check) => (vec![check], Some(spec)),
            Err(e) => (vec![settings_check(e)], None),
        },
        Err(e) => (vec![settings_check(e)], None),
    };
    let columns = match (sample, spec) {
        (Some((s, _)), Some(spec)) => Some(SourceColumns::of(&s, &spec, &form.picks())),
        // No id column yet: the columns still say what they map to.
        (Some((s, unchosen)), None) => unchosen
            .source_only()
            .ok()
            .map(|spec| SourceColumns::of(&s, &spec, &form.picks())),
        (None, _) => None,
    };
    (checks, columns)
}

/// Saving a file source with no status column chosen is refused while the file has one
/// that marks people suspended: they would be provisioned as active. (A file that cannot
/// be read now is not refused here: a path may be filled later; the first cycle says so.)
async fn status_chosen(
    state: &AppState,
    form: &NewAppForm,
    spec: &JobSpec,
) -> Result<(), SyncError> {
    if !form.is_file() || !form.source_status.trim().is_empty() {
        return Ok(());
    }
    let Ok(sample) = state.apps.sample_file(spec, form.in_hand()).await else {
        return Ok(());
    };
    let found = sample.suggest().status.filter(|c| c != "active");
    match found.as_deref().and_then(|c| sample.column(c)) {
        Some(c) if c.suspended > 0 => Err(SyncError::Job(format!(
            "column '{}' marks {} of {} people suspended: choose it as the status column \
             under 2 · Source (Test source offers it), or '{NO_COLUMN}' to provision \
             everyone as active",
            c.name, c.suspended, sample.rows
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_app_form_fills_the_tenant_placeholder_and_checks_the_job() {
        let f = NewAppForm {
            name: "hr".into(),
            source_kind: "csv".into(),
            source_path: "/data/people.csv".into(),
            source_id: "employee_id".into(),
            target_url: "https://app.example/t/{tenant-name}/scim/v2".into(),
            target_tenant: "acme".into(),
            token: "secret".into(),
            ..Default::default()
        };
        let spec = f.spec().unwrap();
        assert_eq!(spec.target.url, "https://app.example/t/acme/scim/v2");
        let unfilled = NewAppForm {
            target_tenant: String::new(),
            ..f.clone()
        };
        assert!(
            unfilled
                .spec()
                .unwrap_err()
                .to_string()
                .contains("{tenant-name}")
        );
        let nameless = NewAppForm {
            name: " ".into(),
            ..f
        };
        assert!(nameless.spec().is_err());
    }

    /// The directory sources' steps give the job file's keys; what is left empty stays out.
    #[test]
    fn directory_sources_from_the_form() {
        let base = NewAppForm {
            name: "gw".into(),
            target_url: "https://app.example/scim/v2".into(),
            token: "t".into(),
            ..Default::default()
        };
        let google = NewAppForm {
            source_kind: "google".into(),
            source_key: "{\"type\": \"service_account\"}".into(),
            source_subject: " admin@example.com ".into(),
            ..base.clone()
        };
        let s = google.source().unwrap();
        assert_eq!(
            s,
            json!({"kind": "google", "credentials": "{\"type\": \"service_account\"}",
                   "subject": "admin@example.com"})
        );
        assert!(google.spec().is_ok());
        let entra = NewAppForm {
            source_kind: "entra".into(),
            source_tenant_id: "8e3c4d2a-1b2c-4d5e-8f90-123456789abc".into(),
            source_client_id: "0b1c2d3e-aaaa-bbbb-cccc-1234567890ab".into(),
            source_client_secret: "s3cret".into(),
            source_api_url: "https://graph.proxy.example".into(),
            ..base.clone()
        };
        let s = entra.source().unwrap();
        assert_eq!(s["client_secret"], "s3cret");
        assert_eq!(s["graph_url"], "https://graph.proxy.example");
        assert!(entra.spec().is_ok());
        let bad = NewAppForm {
            source_subject: "admin".into(),
            ..google
        };
        assert!(
            bad.spec()
                .unwrap_err()
                .to_string()
                .contains("source.subject")
        );
    }

    /// The LDAP step's advanced settings give the job file's keys; a bad one is refused
    /// with the key's own message.
    #[test]
    fn ldap_settings_from_the_form() {
        let f = NewAppForm {
            name: "corp".into(),
            source_kind: "ldap".into(),
            source_url: "ldap://dc1.example.com:389".into(),
            source_base_dn: "dc=example,dc=com".into(),
            source_starttls: "on".into(),
            source_user_filter: "(&(objectCategory=person)(objectClass=user))".into(),
            source_id_attribute: "objectGUID".into(),
            source_disabled: "userAccountControl&2".into(),
            source_change_detection: "poll".into(),
            source_full_scan: "12h".into(),
            target_url: "https://app.example/scim/v2".into(),
            token: "t".into(),
            ..Default::default()
        };
        let s = f.source().unwrap();
        assert_eq!(s["starttls"], true);
        assert_eq!(s["id"], "objectGUID");
        assert_eq!(s["change_detection"], "poll");
        assert!(s.get("group_filter").is_none(), "empty: the default");
        assert!(f.spec().is_ok());
        let auto = NewAppForm {
            source_change_detection: "auto".into(),
            source_starttls: String::new(),
            ..f.clone()
        };
        let s = auto.source().unwrap();
        assert!(s.get("change_detection").is_none() && s.get("starttls").is_none());
        let bad = NewAppForm {
            source_disabled: "userAccountControl&two".into(),
            ..f
        };
        assert!(
            bad.spec()
                .unwrap_err()
                .to_string()
                .contains("source.disabled")
        );
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(
            counts_text(
                &serde_json::from_value(
                    json!({"actions": {"Create": 3, "Skip": 9}, "statuses": {"Failure": 1}})
                )
                .unwrap()
            ),
            "Create 3 · 1 failed"
        );
        assert_eq!(counts_text(&CycleCounts::default()), "no changes");
        assert_eq!(
            counts_text(&CycleCounts {
                error: Some("boom".into()),
                ..CycleCounts::default()
            }),
            "error: boom"
        );
    }
}
