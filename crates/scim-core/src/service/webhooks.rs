//! Managing webhook endpoints: the one code path of `scimd webhook …` and the console's
//! Webhooks page. A signing secret is returned once, when made (add, rotate), and stored
//! only sealed under the instance key.

use crate::Store;
use crate::audit::{Actor, AuditAction, AuditEntry, AuditedChange};
use crate::change::TypeFilter;
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::sealing::SealingKey;
use crate::tenant::Tenant;
use crate::webhook::{WebhookDelivery, WebhookEndpoint, check_url, generate_secret};
use std::sync::Arc;
use time::Duration;

/// How long a rotated-out secret still signs deliveries by default (receivers switch keys
/// within it), and the longest it may.
pub const DEFAULT_SECRET_OVERLAP: Duration = Duration::hours(24);
pub const MAX_SECRET_OVERLAP: Duration = Duration::days(7);

/// A new endpoint and its secret (shown once).
#[derive(Debug)]
pub struct NewEndpoint {
    pub endpoint: WebhookEndpoint,
    pub secret: String,
}

/// Where endpoints may be: the server's outbound policy, applied when one is added (and
/// again by the deliverer before each attempt). `Err` says why a destination is refused.
pub type DestinationCheck = Arc<dyn Fn(&url::Url) -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
pub struct WebhookService {
    store: Arc<dyn crate::store::WebhookStore>,
    feed: Arc<dyn crate::store::EventStore>,
    audit: Arc<dyn crate::store::AuditStore>,
    key: Option<SealingKey>,
    destination: Option<DestinationCheck>,
}

fn sealing_owner(endpoint_id: &str) -> String {
    format!("webhook:{endpoint_id}")
}

/// `url (id)`: an endpoint in the audit log.
fn target(ep: &WebhookEndpoint) -> String {
    format!("{} ({})", ep.url, ep.id)
}

fn prefix_of(secret: &str) -> String {
    secret.chars().take(12).collect()
}

impl WebhookService {
    /// `key`: the instance key (`sync_key_file`); without one, endpoints cannot be added.
    pub fn new(store: Arc<dyn Store>, key: Option<SealingKey>) -> Self {
        Self {
            feed: store.clone(),
            audit: store.clone(),
            store,
            key,
            destination: None,
        }
    }

    /// The same service refusing endpoints `check` refuses.
    pub fn with_destination_check(mut self, check: DestinationCheck) -> Self {
        self.destination = Some(check);
        self
    }

    fn key(&self) -> CoreResult<&SealingKey> {
        self.key.as_ref().ok_or_else(|| {
            CoreError::Invalid(
                "no instance key is configured to seal webhook secrets (sync_key_file); \
                 `scimd serve` creates one on first start"
                    .into(),
            )
        })
    }

    /// Adds an endpoint that receives the tenant's events from now on (older ones by replay).
    pub async fn add(
        &self,
        tenant: &Tenant,
        url: &str,
        types: &str,
        description: &str,
        actor: &Actor,
    ) -> CoreResult<NewEndpoint> {
        let url = check_url(url)?;
        if let (Some(check), Ok(parsed)) = (&self.destination, url::Url::parse(&url)) {
            check(&parsed).map_err(|why| CoreError::Invalid(format!("{url}: {why}")))?;
        }
        let types = TypeFilter::parse(types).map_err(CoreError::Invalid)?;
        let description = description.trim();
        if description.chars().count() > 200 || description.chars().any(char::is_control) {
            return Err(CoreError::Invalid(
                "a description is at most 200 characters, without control characters".into(),
            ));
        }
        let id = format!("we_{}", uuid::Uuid::new_v4().simple());
        let secret = generate_secret();
        let sealed = self.key()?.seal(&sealing_owner(&id), &secret)?;
        let head = self.feed.change_bounds(tenant.id).await?.head;
        let endpoint = WebhookEndpoint {
            id,
            tenant_id: tenant.id,
            url,
            types: types.to_string(),
            description: description.to_string(),
            secret_prefix: prefix_of(&secret),
            sealed_secret: sealed,
            sealed_previous: None,
            previous_until: None,
            created_at: Timestamp::now(),
            enabled: true,
            disabled_reason: None,
            cursor: head,
            failing_since: None,
            attempts: 0,
            next_attempt_at: None,
        };
        let entry = AuditEntry::new(actor, AuditAction::WebhookAdded, target(&endpoint)).on(tenant);
        let change = AuditedChange::InsertEndpoint(Box::new(endpoint.clone()));
        self.audit.audited(&entry, change).await?;
        Ok(NewEndpoint { endpoint, secret })
    }

    pub async fn list(&self, tenant: &Tenant) -> CoreResult<Vec<WebhookEndpoint>> {
        self.store.endpoints(tenant.id).await
    }

    pub async fn get(&self, tenant: &Tenant, id: &str) -> CoreResult<WebhookEndpoint> {
        self.store
            .endpoint(tenant.id, id.trim())
            .await?
            .ok_or_else(|| not_found(tenant, id))
    }

    /// A new secret (returned, to show once); the old one keeps signing for `overlap`.
    pub async fn rotate(
        &self,
        tenant: &Tenant,
        id: &str,
        overlap: Duration,
        actor: &Actor,
    ) -> CoreResult<String> {
        if overlap.is_negative() || overlap > MAX_SECRET_OVERLAP {
            return Err(CoreError::Invalid(format!(
                "the overlap must be between 0 and {} days",
                MAX_SECRET_OVERLAP.whole_days()
            )));
        }
        let ep = self.get(tenant, id).await?;
        let secret = generate_secret();
        let sealed = self.key()?.seal(&sealing_owner(&ep.id), &secret)?;
        let until = Timestamp::now() + overlap;
        let entry =
            AuditEntry::new(actor, AuditAction::WebhookSecretRotated, target(&ep)).on(tenant);
        let change = AuditedChange::RotateEndpointSecret {
            tenant_id: tenant.id,
            id: ep.id.clone(),
            sealed,
            prefix: prefix_of(&secret),
            previous_until: until,
        };
        if !self.audit.audited(&entry, change).await?.done() {
            return Err(not_found(tenant, id));
        }
        Ok(secret)
    }

    /// Delivers again from sequence `from` (inclusive) and re-enables the endpoint.
    pub async fn replay(
        &self,
        tenant: &Tenant,
        id: &str,
        from: i64,
        actor: &Actor,
    ) -> CoreResult<()> {
        let ep = self.get(tenant, id).await?;
        let bounds = self.feed.change_bounds(tenant.id).await?;
        if from < 1 || from > bounds.head + 1 {
            return Err(CoreError::Invalid(format!(
                "replay from a sequence between 1 and {} (the next event)",
                bounds.head + 1
            )));
        }
        if from < bounds.first {
            return Err(CoreError::Gone(format!(
                "events before {} are no longer retained; replay from {} or later",
                bounds.first, bounds.first
            )));
        }
        let what = format!("{} from event {from}", target(&ep));
        let entry = AuditEntry::new(actor, AuditAction::WebhookReplayed, what).on(tenant);
        let change = AuditedChange::ResetEndpointCursor {
            tenant_id: tenant.id,
            id: ep.id.clone(),
            cursor: from - 1,
        };
        self.audit.audited(&entry, change).await?;
        Ok(())
    }

    pub async fn set_enabled(
        &self,
        tenant: &Tenant,
        id: &str,
        enabled: bool,
        actor: &Actor,
    ) -> CoreResult<()> {
        let ep = self.get(tenant, id).await?;
        let action = if enabled {
            AuditAction::WebhookEnabled
        } else {
            AuditAction::WebhookDisabled
        };
        let entry = AuditEntry::new(actor, action, target(&ep)).on(tenant);
        let change = AuditedChange::SetEndpointEnabled {
            tenant_id: tenant.id,
            id: ep.id.clone(),
            enabled,
            reason: (!enabled).then(|| "disabled by an operator".to_string()),
        };
        if self.audit.audited(&entry, change).await?.done() {
            Ok(())
        } else {
            Err(not_found(tenant, id))
        }
    }

    pub async fn delete(&self, tenant: &Tenant, id: &str, actor: &Actor) -> CoreResult<()> {
        let ep = self.get(tenant, id).await?;
        let entry = AuditEntry::new(actor, AuditAction::WebhookDeleted, target(&ep)).on(tenant);
        let change = AuditedChange::DeleteEndpoint {
            tenant_id: tenant.id,
            id: ep.id.clone(),
        };
        if self.audit.audited(&entry, change).await?.done() {
            Ok(())
        } else {
            Err(not_found(tenant, id))
        }
    }

    pub async fn deliveries(
        &self,
        tenant: &Tenant,
        id: &str,
        limit: u32,
    ) -> CoreResult<Vec<WebhookDelivery>> {
        let ep = self.get(tenant, id).await?;
        self.store.deliveries(tenant.id, &ep.id, limit).await
    }

    /// The secrets that sign a delivery now: the current one, and the previous one while
    /// its overlap lasts.
    pub fn signing_secrets(&self, ep: &WebhookEndpoint, now: Timestamp) -> CoreResult<Vec<String>> {
        let key = self.key()?;
        let owner = sealing_owner(&ep.id);
        let mut out = vec![key.open(&owner, &ep.sealed_secret)?];
        if let (Some(prev), Some(until)) = (&ep.sealed_previous, ep.previous_until)
            && until > now
        {
            out.push(key.open(&owner, prev)?);
        }
        Ok(out)
    }
}

fn not_found(tenant: &Tenant, id: &str) -> CoreError {
    CoreError::NotFound(format!(
        "webhook endpoint '{}' of tenant '{}'",
        scim_proto::error::excerpt(id),
        tenant.slug
    ))
}
