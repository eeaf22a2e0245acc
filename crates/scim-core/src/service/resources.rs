//! The resource service: SCIM create / read / replace / patch / delete / list for Users and
//! Groups, on top of `scim-proto` (what a request means) and a [`Store`] (making it durable).
//! The SCIM routes, Bulk and the console's browsers all go through it.
//!
//! Group membership never goes through the JSON body: member operations in a PATCH or PUT are
//! turned into [`MemberOp`]s the store applies as row inserts and deletes, in the same
//! transaction as the rest of the change.

use crate::Store;
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::event::{Event, LogEntry, Operation, RequestContext};
use crate::resource::{IndexedFields, MemberOp, ResourceKind, StoredResource, Write};
use crate::store::{Query, QueryResult};
use crate::tenant::Tenant;
use scim_proto::cursor::Cursor;
use scim_proto::etag::EntityTags;
use scim_proto::json::find_key;
use scim_proto::patch::{PatchOp, PatchOpKind, PatchRequest, apply_patch};
use scim_proto::resource::{check_immutable, normalize_attribute, parse_resource};
use scim_proto::schema::standard_view as view_of;
use scim_proto::{
    AttrPath, CompValue, CompareOp, FilterExpr, FilterLimits, Projection, ScimError, SearchRequest,
    filter, render, urn,
};
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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_results: 1000,
            default_count: 100,
            max_patch_operations: 1000,
            filter: FilterLimits::default(),
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

/// Member ids from a `members` value (objects, bare strings, one object).
fn member_ids(value: Option<&Value>) -> CoreResult<Vec<String>> {
    let view = view_of(ResourceKind::Group);
    let Some(def) = view.core_attribute("members") else {
        return Ok(Vec::new());
    };
    let Some(v) = value else {
        return Ok(Vec::new());
    };
    let normalized = normalize_attribute(def, v.clone(), "members")?;
    let mut ids = Vec::new();
    for item in normalized
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match item.get("value").and_then(Value::as_str) {
            Some(id) => ids.push(id.to_string()),
            None => {
                return Err(ScimError::invalid_value(
                    "every member needs a 'value' (the member's id)",
                )
                .into());
            }
        }
    }
    Ok(ids)
}

/// `value eq "a" or value eq "b"`: the ids, when the filter is exactly that.
fn value_eq_ids(f: &FilterExpr) -> Option<Vec<String>> {
    match f {
        FilterExpr::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Str(s),
        } if path.urn.is_none()
            && path.sub.is_none()
            && path.name.eq_ignore_ascii_case("value") =>
        {
            Some(vec![s.clone()])
        }
        FilterExpr::Or(a, b) => {
            let mut v = value_eq_ids(a)?;
            v.extend(value_eq_ids(b)?);
            Some(v)
        }
        _ => None,
    }
}

fn is_members_path(p: &AttrPath) -> bool {
    p.name.eq_ignore_ascii_case("members")
        && p.urn
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(urn::GROUP))
}

/// Splits a group PATCH into the operations on the JSON body and the membership operations.
fn split_group_patch(ops: &[PatchOp]) -> CoreResult<(Vec<PatchOp>, Vec<MemberOp>)> {
    let view = view_of(ResourceKind::Group);
    let mut body_ops = Vec::new();
    let mut member_ops = Vec::new();
    let members_for =
        |kind: PatchOpKind, value: Option<&Value>, out: &mut Vec<MemberOp>| -> CoreResult<()> {
            match kind {
                PatchOpKind::Add => {
                    if value.is_none() {
                        return Err(
                            ScimError::invalid_syntax("'add' of members requires a value").into(),
                        );
                    }
                    out.push(MemberOp::Add(member_ids(value)?));
                }
                PatchOpKind::Replace => {
                    let ids = member_ids(value)?;
                    out.push(MemberOp::Clear);
                    out.push(MemberOp::Add(ids));
                }
                PatchOpKind::Remove => match value {
                    Some(v) if !v.is_null() => out.push(MemberOp::Remove(member_ids(Some(v))?)),
                    _ => out.push(MemberOp::Clear),
                },
            }
            Ok(())
        };
    for (i, op) in ops.iter().enumerate() {
        let at = |e: CoreError| match e {
            CoreError::Scim(s) => CoreError::Scim(ScimError {
                detail: format!("operation {} ({}): {}", i + 1, op.kind.as_str(), s.detail),
                ..s
            }),
            other => other,
        };
        match (&op.path, &op.raw_path) {
            (None, None) if op.kind != PatchOpKind::Remove => {
                let Some(Value::Object(obj)) = &op.value else {
                    body_ops.push(op.clone());
                    continue;
                };
                let mut rest = obj.clone();
                if let Some(k) = find_key(obj, "members") {
                    let v = rest.remove(&k);
                    members_for(op.kind, v.as_ref(), &mut member_ops).map_err(at)?;
                }
                if !rest.is_empty() {
                    body_ops.push(PatchOp {
                        value: Some(Value::Object(rest)),
                        ..op.clone()
                    });
                }
            }
            (Some(p), _) if is_members_path(&p.attr) => {
                if p.attr.sub.is_some() {
                    return Err(at(ScimError::mutability(
                        "member sub-attributes are immutable: remove the member and add it again",
                    )
                    .into()));
                }
                match &p.filter {
                    None => members_for(op.kind, op.value.as_ref(), &mut member_ops).map_err(at)?,
                    Some(f) => {
                        if op.kind != PatchOpKind::Remove {
                            return Err(at(ScimError::mutability(
                                "members are immutable: remove the member and add it again",
                            )
                            .into()));
                        }
                        if let Some(def) = view.core_attribute("members") {
                            f.validate_element(&view, def).map_err(|e| at(e.into()))?;
                        }
                        match value_eq_ids(f) {
                            Some(ids) => member_ops.push(MemberOp::Remove(ids)),
                            None => member_ops.push(MemberOp::RemoveMatching(f.clone())),
                        }
                    }
                }
            }
            _ => body_ops.push(op.clone()),
        }
    }
    Ok((body_ops, member_ops))
}

/// Parses a body for create/replace: the canonical body (password dropped) and, for groups,
/// the member ids taken out of it.
fn parse_body(kind: ResourceKind, body: Value) -> CoreResult<(Value, Option<Vec<String>>)> {
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
        let (parsed, members) = parse_body(kind, body)?;
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
        let (parsed, members) = parse_body(kind, body)?;
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
    ) {
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

    fn ops(v: Value) -> Vec<PatchOp> {
        PatchRequest::from_value(&json!({"Operations": v}))
            .unwrap()
            .operations
    }

    #[test]
    fn group_patches_split_into_body_and_member_operations() {
        let (body, members) = split_group_patch(&ops(json!([
            {"op": "Replace", "path": "displayName", "value": "X"},
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u1"}, {"value": "u2"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u3"}]},
            {"op": "remove", "path": "members[value eq \"u4\"]"},
            {"op": "remove", "path": "members[type eq \"Group\"]"},
            {"op": "replace", "value": {"externalId": "e", "members": [{"value": "u9"}]}},
            {"op": "remove", "path": "members"}
        ])))
        .unwrap();
        assert_eq!(body.len(), 2);
        assert_eq!(body[1].value, Some(json!({"externalId": "e"})));
        assert_eq!(members.len(), 7);
        assert_eq!(members[0], MemberOp::Add(vec!["u1".into(), "u2".into()]));
        assert_eq!(members[1], MemberOp::Remove(vec!["u3".into()]));
        assert_eq!(members[2], MemberOp::Remove(vec!["u4".into()]));
        assert!(matches!(members[3], MemberOp::RemoveMatching(_)));
        assert_eq!(members[4], MemberOp::Clear);
        assert_eq!(members[5], MemberOp::Add(vec!["u9".into()]));
        assert_eq!(members[6], MemberOp::Clear);
    }

    #[test]
    fn member_sub_attribute_changes_are_refused() {
        for bad in [
            json!([{"op": "replace", "path": "members[value eq \"u1\"].value", "value": "u2"}]),
            json!([{"op": "add", "path": "members[value eq \"u1\"]", "value": {"value": "u2"}}]),
        ] {
            let e = split_group_patch(&ops(bad)).unwrap_err().to_scim();
            assert_eq!(e.scim_type, Some(scim_proto::ScimType::Mutability));
        }
    }

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
