//! Console pages by area, like kanidm's `views/`: each handler loads what its page shows
//! through a `scim_core` service, computes display values (`super::view`) and renders one
//! template. None of them touches the store.

pub mod admins;
pub mod apps;
pub mod audit;
pub mod directory;
pub mod guide;
pub mod integration;
pub mod log;
pub mod log_api;
pub mod login;
pub mod second_factor;
pub mod setup;
pub mod tenants;
pub mod webhooks;

/// What every page handler uses.
pub(crate) mod common {
    use super::super::session::ConsoleSession;
    use super::super::view::{self, Chrome};
    use crate::AppState;
    use crate::error::{ApiResult, AppError};
    use askama::Template;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use scim_core::{CoreError, Tenant};
    use std::sync::Arc;

    pub type AppStateRef = State<Arc<AppState>>;

    pub fn html(status: StatusCode, page: &impl Template) -> ApiResult<Response> {
        Ok((status, view::html_headers(), page.render()?).into_response())
    }

    /// The tenant of the page's URL, or a 404 page.
    pub async fn tenant_of(state: &AppState, slug: &str) -> ApiResult<Tenant> {
        state.services.tenants.get(slug).await.map_err(|e| match e {
            CoreError::NotFound(_) => AppError::new(
                404,
                format!("there is no tenant '{}'", scim_proto::error::excerpt(slug)),
            ),
            other => other.into(),
        })
    }

    pub fn chrome(s: &ConsoleSession, tenant: Option<&Tenant>, tab: &'static str) -> Chrome {
        let role = &s.operator.role;
        Chrome {
            operator: s.operator.username.clone(),
            csrf: s.csrf.clone(),
            tenant: tenant.map(|t| t.slug.clone()),
            tab,
            instance: role.is_instance(),
            // A tenant's page: admin access to it; any other (an app's): an instance admin.
            can_write: match tenant {
                Some(t) => role.access_to(&t.slug) == Some(scim_core::access::Access::Admin),
                None => role.is_instance(),
            },
        }
    }

    /// What a form action leaves on a page: done (a status, a secret shown once, a
    /// message), or refused with the reason the form shows (a 400). A failure of scimd's own
    /// is an `Err` beside it (the error page).
    pub enum Outcome<S> {
        Done(StatusCode, Option<S>, Option<String>),
        Refused(String),
    }

    impl<S> Outcome<S> {
        /// The page as it is, without an action.
        pub fn shown() -> Self {
            Outcome::Done(StatusCode::OK, None, None)
        }

        /// Done with a message.
        pub fn done(message: impl Into<String>) -> Self {
            Outcome::Done(StatusCode::OK, None, Some(message.into()))
        }

        /// The status, the secret, the message and the error to show.
        pub fn parts(self) -> (StatusCode, Option<S>, Option<String>, Option<String>) {
            match self {
                Outcome::Done(status, secret, message) => (status, secret, message, None),
                Outcome::Refused(e) => (StatusCode::BAD_REQUEST, None, None, Some(e)),
            }
        }
    }

    /// What a form's unknown `action` value gets (quoted, cut short).
    pub fn unknown_action(action: &str) -> String {
        format!("unknown action '{}'", scim_proto::error::excerpt(action))
    }

    /// Query-string pairs (a malformed query string reads as none).
    pub fn pairs(raw: Option<String>) -> Vec<(String, String)> {
        raw.and_then(|q| serde_urlencoded::from_str(&q).ok())
            .unwrap_or_default()
    }

    pub fn param(pairs: &[(String, String)], key: &str) -> String {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }
}
