//! The resource service: SCIM create / read / replace / patch / delete / list for Users and
//! Groups, on top of `scim-proto` (what a request means) and a [`Store`] (making it durable).
//! The SCIM routes, Bulk and the console's browsers all go through it.
//!
//! Group membership never goes through the JSON body: member operations in a PATCH or PUT are
//! turned into [`MemberOp`]s the store applies as row inserts and deletes, in the same
//! transaction as the rest of the change.

use super::group_patch::{member_ids, split_group_patch};
use crate::Store;
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::event::{Event, LogEntry, Operation, RequestContext};
use crate::resource::{IndexedFields, MemberOp, ResourceKind, StoredResource, Write};
use crate::store::{Query, QueryResult};
use crate::tenant::Tenant;
use scim_proto::cursor::Cursor;
use scim_proto::etag::EntityTags;
use scim_proto::patch::{PatchRequest, apply_patch};
use scim_proto::resource::{check_immutable, parse_resource};
use scim_proto::schema::standard_view as view_of;
use scim_proto::{AttrPath, FilterLimits, Projection, ScimError, SearchRequest, filter, render};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Operational limits, advertised in ServiceProviderConfig where SCIM advertises them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_results: u64,
    pub default_count: u64,
    pub max_patch_operations: usize,
    pub filter: FilterLimits,
    /// The largest resource stored (its JSON), so one user cannot grow without bound.
    pub max_resource_bytes: usize,
    /// The most resource bytes one list page carries: past it the page ends early (fewer
    /// `itemsPerPage`, RFC 7644 §3.4.2.4) and the next page continues.
    pub max_page_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_results: 1000,
            default_count: 100,
            max_patch_operations: 1000,
            filter: FilterLimits::default(),
            max_resource_bytes: 64 * 1024,
            max_page_bytes: 8 << 20,
        }
    }
}

pub struct ResourceService {
    store: Arc<dyn crate::store::ResourceStore>,
    events: Arc<dyn crate::store::EventStore>,
    pub limits: Limits,
    /// Whether successful changes write provisioning-log events.
    pub log_events: bool,
    /// Signalled after each committed change (wakes the change feed's long polls).
    pub notifier: Arc<super::ChangeNotifier>,
}

/// `If-Match` (RFC 7644 §3.14): absent, or naming the current version.
fn precondition(header: Option<&str>, current: &StoredResource) -> CoreResult<()> {
    match header {
        Some(h) if !EntityTags::parse(h).matches(current.version) => {
            Err(ScimError::precondition_failed(format!(
                "the resource has changed: its version is {}, If-Match asked for {}",
                current.etag(),
                scim_proto::error::excerpt(h)
            ))
            .into())
        }
        _ => Ok(()),
    }
}

/// Whether a response with `projection` shows the resource's relations (a group's
/// `members`, a user's `groups`), so the store should read them with it.
pub fn wants_related(kind: ResourceKind, projection: &Projection) -> bool {
    let relation = match kind {
        ResourceKind::User => "groups",
        ResourceKind::Group => "members",
    };
    projection.includes(&view_of(kind), relation)
}

fn not_found(kind: ResourceKind, id: &str) -> CoreError {
    ScimError::not_found(format!("{} '{id}' not found", kind.as_str())).into()
}

/// Parses a body for create/replace: the canonical body (password dropped) and, for groups,
/// the member ids taken out of it.
fn parse_body(
    kind: ResourceKind,
    body: Value,
    max_bytes: usize,
) -> CoreResult<(Value, Option<Vec<String>>)> {
    let view = view_of(kind);
    let mut parsed = parse_resource(&view, body)?;
    crate::resource::check_names(kind, &parsed)?;
    let mut members = None;
    if let Value::Object(o) = &mut parsed {
        // scimd does not keep passwords: changePassword is unsupported and IdP-provisioned
        // users sign in through SSO. Never stored, never echoed.
        o.remove("password");
        if kind == ResourceKind::Group {
            let m = o.remove("members");
            members = Some(member_ids(m.as_ref())?);
        }
    }
    // What is stored: members are rows of their own, not part of the body's size.
    crate::resource::check_size(kind, &parsed, max_bytes)?;
    Ok((parsed, members))
}

/// The log entry a write carries, when the provisioning log is on.
fn log_entry(
    enabled: bool,
    operation: Operation,
    status: u16,
    ctx: &RequestContext,
) -> Option<LogEntry> {
    enabled.then(|| LogEntry {
        operation,
        status,
        ctx: ctx.clone(),
    })
}

impl ResourceService {
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        Self {
            events: store.clone(),
            store,
            limits,
            log_events: true,
            notifier: Arc::default(),
        }
    }

    /// Passes a committed write's result through, waking the tenant's feed readers.
    fn committed<T>(&self, tenant: &Tenant, r: CoreResult<T>) -> CoreResult<T> {
        if r.is_ok() {
            self.notifier.changed(tenant.id);
        }
        r
    }

    fn log(&self, operation: Operation, status: u16, ctx: &RequestContext) -> Option<LogEntry> {
        log_entry(self.log_events, operation, status, ctx)
    }

    pub async fn create(
        &self,
        tenant: &Tenant,
        kind: ResourceKind,
        body: Value,
        ctx: &RequestContext,
    ) -> CoreResult<StoredResource> {
        let (parsed, members) = parse_body(kind, body, self.limits.max_resource_bytes)?;
        let fields = IndexedFields::from_body(kind, &parsed);
        let member_ops = members
            .map(|ids| vec![MemberOp::Add(ids)])
            .unwrap_or_default();
        let write = Write {
            body: parsed,
            fields,
            member_ops,
            log: self.log(Operation::create(kind), 201, ctx),
        };
        let id = uuid::Uuid::new_v4().to_string();
        let r = self
            .store
            .create(tenant.id, kind, &id, &write, Timestamp::now())
            .await;
        self.committed(tenant, r)
    }

    pub async fn get(
        &self,
        tenant: &Tenant,
        kind: ResourceKind,
        id: &str,
        related: bool,
    ) -> CoreResult<StoredResource> {
        self.store
            .get(tenant.id, kind, id, related)
            .await?
            .ok_or_else(|| not_found(kind, id))
    }

    pub async fn replace(
        &self,
        tenant: &Tenant,
        kind: ResourceKind,
        id: &str,
        body: Value,
        if_match: Option<&str>,
        ctx: &RequestContext,
    ) -> CoreResult<StoredResource> {
        let (parsed, members) = parse_body(kind, body, self.limits.max_resource_bytes)?;
        let view = view_of(kind);
        let if_match = if_match.map(str::to_string);
        let (log_events, ctx) = (self.log_events, ctx.clone());
        let modifier = move |cur: &StoredResource| -> CoreResult<Write> {
            precondition(if_match.as_deref(), cur)?;
            check_immutable(&view, &cur.body, &parsed)?;
            let member_ops = match &members {
                Some(ids) => vec![MemberOp::Clear, MemberOp::Add(ids.clone())],
                None => Vec::new(),
            };
            let operation = match kind {
                ResourceKind::User => Operation::user_update(&cur.body, &parsed),
                ResourceKind::Group => Operation::UpdateGroup,
            };
            Ok(Write {
                body: parsed.clone(),
                fields: IndexedFields::from_body(kind, &parsed),
                member_ops,
                log: log_entry(log_events, operation, 200, &ctx),
            })
        };
        let r = self
            .store
            .modify(
                tenant.id,
                kind,
                id,
                true,
                Arc::new(modifier),
                Timestamp::now(),
            )
            .await;
        self.committed(tenant, r?.ok_or_else(|| not_found(kind, id)))
    }

    pub async fn patch(
        &self,
        tenant: &Tenant,
        kind: ResourceKind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        ctx: &RequestContext,
    ) -> CoreResult<StoredResource> {
        let req = PatchRequest::from_value(body)?;
        if req.operations.len() > self.limits.max_patch_operations {
            return Err(ScimError::payload_too_large(format!(
                "{} PATCH operations; the limit is {}",
                req.operations.len(),
                self.limits.max_patch_operations
            ))
            .into());
        }
        let (body_ops, member_ops) = match kind {
            ResourceKind::Group => split_group_patch(&req.operations)?,
            ResourceKind::User => (req.operations, Vec::new()),
        };
        let view = view_of(kind);
        let if_match = if_match.map(str::to_string);
        let (log_events, ctx) = (self.log_events, ctx.clone());
        let max_bytes = self.limits.max_resource_bytes;
        let modifier = move |cur: &StoredResource| -> CoreResult<Write> {
            precondition(if_match.as_deref(), cur)?;
            let new_body = if body_ops.is_empty() {
                cur.body.clone()
            } else {
                let mut b = apply_patch(&view, &cur.body, &body_ops)?;
                if let Value::Object(o) = &mut b {
                    o.remove("password");
                }
                crate::resource::check_names(kind, &b)?;
                crate::resource::check_size(kind, &b, max_bytes)?;
                b
            };
            let operation = match kind {
                ResourceKind::User => Operation::user_update(&cur.body, &new_body),
                ResourceKind::Group => {
                    crate::resource::group_operation(new_body != cur.body, &member_ops)
                }
            };
            let status = if kind == ResourceKind::Group {
                204
            } else {
                200
            };
            Ok(Write {
                fields: IndexedFields::from_body(kind, &new_body),
                body: new_body,
                member_ops: member_ops.clone(),
                log: log_entry(log_events, operation, status, &ctx),
            })
        };
        let r = self
            .store
            .modify(
                tenant.id,
                kind,
                id,
                // A user's answer shows its groups; a group PATCH answers without members.
                kind == ResourceKind::User,
                Arc::new(modifier),
                Timestamp::now(),
            )
            .await;
        self.committed(tenant, r?.ok_or_else(|| not_found(kind, id)))
    }

    pub async fn delete(
        &self,
        tenant: &Tenant,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
        ctx: &RequestContext,
    ) -> CoreResult<()> {
        if if_match.is_some() {
            let cur = self.get(tenant, kind, id, false).await?;
            precondition(if_match, &cur)?;
        }
        let log = self.log(Operation::delete(kind), 204, ctx);
        if self
            .store
            .delete(tenant.id, kind, id, log.as_ref(), Timestamp::now())
            .await?
        {
            self.notifier.changed(tenant.id);
            Ok(())
        } else {
            Err(not_found(kind, id))
        }
    }

    /// Validates a search request into a store query.
    pub fn query_for(&self, kind: ResourceKind, req: &SearchRequest) -> CoreResult<Query> {
        let view = view_of(kind);
        let filter = match req
            .filter
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            Some(f) => {
                let parsed = filter::parse_with(f, self.limits.filter)?;
                parsed.validate(&view)?;
                Some(parsed)
            }
            None => None,
        };
        let sort_by = match req
            .sort_by
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(s) => {
                let p = AttrPath::parse(s).ok_or_else(|| {
                    ScimError::invalid_value(format!("sortBy '{s}' is not an attribute path"))
                })?;
                let r = view.resolve_or(&p, ScimError::invalid_value)?;
                if r.leaf().kind == scim_proto::AttributeType::Complex {
                    return Err(ScimError::invalid_value(format!(
                        "sortBy '{s}' is complex; sort by one of its sub-attributes"
                    ))
                    .into());
                }
                Some(p)
            }
            None => None,
        };
        let descending = match req.sort_order.as_deref() {
            Some(o) => {
                scim_proto::wire::SortOrder::parse(o)? == scim_proto::wire::SortOrder::Descending
            }
            None => false,
        };
        let page = scim_proto::wire::Page::new(
            req.start_index,
            req.count,
            self.limits.default_count,
            self.limits.max_results,
        );
        let cursor = req.cursor.as_deref().map(Cursor::parse).transpose()?;
        let projection = req.projection()?;
        Ok(Query {
            filter,
            sort_by,
            descending,
            offset: page.offset(),
            count: page.count,
            cursor,
            related: wants_related(kind, &projection),
            max_bytes: Some(self.limits.max_page_bytes),
        })
    }

    /// Records a failed request in its own transaction. Logging must never turn a client
    /// error into a server error, so a storage failure here is only reported.
    pub async fn log_failure(
        &self,
        tenant: &Tenant,
        kind: Option<ResourceKind>,
        resource_id: Option<&str>,
        error: &ScimError,
        ctx: &RequestContext,
        method: Option<&str>,
    ) {
        // Only a method SCIM knows is kept (a Bulk operation's is the client's text).
        let method = method
            .map(str::to_ascii_uppercase)
            .filter(|m| crate::event::LOGGED_METHODS.contains(&m.as_str()));
        let event = Event {
            seq: 0,
            tenant_id: tenant.id,
            at: Timestamp::now(),
            operation: Operation::Failure,
            resource_type: kind.map(|k| k.as_str().to_string()),
            // Client-controlled text is bounded before it is stored.
            resource_id: resource_id.map(|id| id.chars().take(200).collect()),
            resource_name: None,
            status: error.status,
            scim_type: error.scim_type.map(|t| t.as_str().to_string()),
            detail: Some(error.detail.chars().take(1000).collect()),
            token_name: ctx.token_name.clone(),
            request_id: ctx.request_id.clone(),
            client_addr: ctx.client_addr.clone(),
            method,
            change: None,
        };
        if let Err(e) = self.events.log_event(&event).await {
            tracing::warn!(error = %e, "could not write a Failure event");
        }
    }

    pub async fn list(
        &self,
        tenant: &Tenant,
        kind: ResourceKind,
        req: &SearchRequest,
    ) -> CoreResult<QueryResult> {
        let q = self.query_for(kind, req)?;
        self.store.query(tenant.id, kind, &q).await
    }

    /// `POST /.search` (RFC 7644 §3.4.3) across the resource types in `kinds` (those the
    /// token may read): users first, then groups, in creation order. A filter applies to the
    /// types whose schema has its attributes; one that fits none is `400 invalidFilter`.
    /// Sorting and cursors are per resource type, so they are refused with a clear error
    /// instead of mis-ordering. Returns the page and the total.
    pub async fn search_across(
        &self,
        tenant: &Tenant,
        kinds: &[ResourceKind],
        req: &SearchRequest,
    ) -> CoreResult<(Vec<StoredResource>, u64)> {
        if req.sort_by.is_some() || req.cursor.is_some() {
            return Err(ScimError::invalid_value(
                "sortBy and cursor are not supported on the root .search; use /Users/.search or /Groups/.search",
            )
            .into());
        }
        let mut queries = Vec::new();
        let mut first_error = None;
        for kind in kinds {
            match self.query_for(*kind, req) {
                Ok(q) => queries.push((*kind, q)),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        let Some((_, first)) = queries.first() else {
            return Err(first_error.unwrap_or_else(|| {
                ScimError::new(403, None, "the token may not read Users or Groups").into()
            }));
        };
        let mut page = scim_proto::search::SpreadPage::new(first.offset, first.count);
        let (mut found, mut total) = (Vec::new(), 0);
        for (kind, mut q) in queries {
            q.offset = page.offset;
            q.count = page.remaining;
            let r = self.store.query(tenant.id, kind, &q).await?;
            total += r.total;
            page.advance(r.total, r.resources.len() as u64);
            found.extend(r.resources);
        }
        Ok((found, total))
    }

    /// The groups a resource is a direct member of (the console's user page).
    pub async fn groups_of(&self, tenant: &Tenant, id: &str) -> CoreResult<Vec<render::GroupRef>> {
        let mut all = self.store.groups_of(tenant.id, &[id.to_string()]).await?;
        Ok(all.remove(id).unwrap_or_default())
    }

    /// Renders resources for a response: full representation, `groups` for users when the
    /// projection wants it, then the projection.
    pub async fn render(
        &self,
        tenant: &Tenant,
        resources: &[StoredResource],
        base_url: &str,
        projection: &Projection,
    ) -> CoreResult<Vec<Value>> {
        let mut read = HashMap::new();
        // Users whose groups the store did not read with them.
        let user_ids: Vec<String> = resources
            .iter()
            .filter(|r| r.kind == ResourceKind::User && r.groups.is_none())
            .map(|r| r.id.clone())
            .collect();
        let wants_groups = projection.includes(&view_of(ResourceKind::User), "groups");
        if !user_ids.is_empty() && wants_groups {
            read = self.store.groups_of(tenant.id, &user_ids).await?;
        }
        Ok(resources
            .iter()
            .map(|r| {
                let mut full = r.to_scim(base_url);
                let groups = r.groups.as_ref().or_else(|| read.get(&r.id));
                // A user in no group has no `groups` attribute (RFC 7643 §2.5: unassigned).
                if let Some(gs) = groups.filter(|gs| wants_groups && !gs.is_empty()) {
                    render::set_groups(&mut full, gs, base_url);
                }
                projection.apply(&view_of(r.kind), &full)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn if_match_accepts_weak_strong_star_and_lists() {
        let r = StoredResource {
            kind: ResourceKind::User,
            id: "u".into(),
            body: json!({}),
            created_at: Timestamp::EPOCH,
            modified_at: Timestamp::EPOCH,
            version: 3,
            members: None,
            groups: None,
        };
        for ok in [
            None,
            Some("*"),
            Some("W/\"3\""),
            Some("\"3\""),
            Some("W/\"1\", W/\"3\""),
        ] {
            assert!(precondition(ok, &r).is_ok(), "{ok:?}");
        }
        assert!(precondition(Some("W/\"2\""), &r).is_err());
    }
}
