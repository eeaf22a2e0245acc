//! The store contract for tenant admins and setup links (issue 32): grants seen with the
//! operator, links redeemed once and in one transaction with what they do, a taken name leaving
//! the link unused, and a deleted tenant taking its grants and links with it.

use scim_core::access::{Access, Role};
use scim_core::audit::{
    Actor, ActorKind, AuditAction, AuditEntry, AuditOutcome, AuditQuery, AuditedChange,
};
use scim_core::operator::SessionRecord;
use scim_core::setup_link::{Idp, LinkPurpose, LinkState, NewSetupLink};
use scim_core::{CoreError, Store, Timestamp};
use std::sync::Arc;
use time::Duration;

fn link(
    tenant_id: i64,
    hash: &str,
    purpose: LinkPurpose,
    operator_id: Option<i64>,
) -> NewSetupLink {
    let now = Timestamp::now();
    NewSetupLink {
        token_hash: hash.into(),
        tenant_id,
        purpose,
        operator_id,
        idp: Some(Idp::Okta),
        created_by: "root".into(),
        created_at: now,
        expires_at: now + Duration::hours(1),
    }
}

pub async fn run_all(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    let a = s.create_tenant("ca-one", "One", now).await.unwrap();
    let b = s.create_tenant("ca-two", "Two", now).await.unwrap();

    // An invite: stored without its secret, listed, redeemed once.
    let made = s
        .insert_setup_link(&link(a.id, "h-invite", LinkPurpose::Invite, None))
        .await
        .unwrap();
    assert_eq!(made.idp, Some(Idp::Okta));
    assert_eq!(made.state(now), LinkState::Usable);
    assert_eq!(s.setup_links(a.id, 10).await.unwrap(), vec![made.clone()]);
    assert!(s.setup_links(b.id, 10).await.unwrap().is_empty());
    // A taken name: refused, and the link stays usable.
    s.create_operator("ca-root", "$argon2id$x", now)
        .await
        .unwrap();
    assert!(matches!(
        s.redeem_invite("h-invite", "ca-root", "$argon2id$y", now)
            .await,
        Err(CoreError::Conflict(_))
    ));
    let still = s.setup_link("h-invite").await.unwrap().unwrap();
    assert_eq!(still.state(now), LinkState::Usable);
    let admin = s
        .redeem_invite("h-invite", "ca-admin", "$argon2id$y", now)
        .await
        .unwrap();
    let Role::Tenant { grants } = &admin.role else {
        panic!("an invite makes a tenant admin: {admin:?}");
    };
    assert_eq!(
        (grants.len(), grants[0].slug.as_str(), grants[0].access),
        (1, "ca-one", Access::Admin)
    );
    let used = s.setup_link("h-invite").await.unwrap().unwrap();
    assert_eq!(used.state(now), LinkState::Used);
    assert_eq!(used.used_by.as_deref(), Some("ca-admin"));
    assert!(matches!(
        s.redeem_invite("h-invite", "ca-other", "$argon2id$y", now)
            .await,
        Err(CoreError::Gone(_))
    ));
    assert!(s.operator_by_name("ca-other").await.unwrap().is_none());

    // Grants: read-only on another tenant; an instance admin takes none.
    assert!(
        s.set_grant(admin.id, b.id, Some(Access::ReadOnly))
            .await
            .unwrap()
    );
    let root = s.operator_by_name("ca-root").await.unwrap().unwrap();
    assert_eq!(root.role, Role::Instance);
    assert!(
        !s.set_grant(root.id, b.id, Some(Access::Admin))
            .await
            .unwrap()
    );
    let back = s.operator_by_name("ca-admin").await.unwrap().unwrap();
    assert_eq!(back.role.access_to("ca-two"), Some(Access::ReadOnly));
    let admins = s.tenant_admins(b.id).await.unwrap();
    assert_eq!(admins.len(), 1);
    assert_eq!(
        (admins[0].0.username.as_str(), admins[0].1),
        ("ca-admin", Access::ReadOnly)
    );
    // The session carries the grants.
    let session = SessionRecord {
        id_hash: "ca-sess".into(),
        operator_id: admin.id,
        csrf_token: "c".into(),
        created_at: now,
        expires_at: now + Duration::hours(1),
    };
    s.insert_session(&session).await.unwrap();
    let (_, who) = s.session("ca-sess", now).await.unwrap().unwrap();
    assert_eq!(who.role.grants().len(), 2);

    // A reset link: sets the password, ends the sessions, once.
    s.insert_setup_link(&link(a.id, "h-reset", LinkPurpose::Reset, Some(admin.id)))
        .await
        .unwrap();
    let listed = s.setup_links(a.id, 10).await.unwrap();
    assert_eq!(
        listed[0].operator.as_deref(),
        Some("ca-admin"),
        "newest first"
    );
    let reset = s
        .redeem_reset("h-reset", "$argon2id$new", now)
        .await
        .unwrap();
    assert_eq!(reset.password_hash, "$argon2id$new");
    assert!(s.session("ca-sess", now).await.unwrap().is_none());
    assert!(matches!(
        s.redeem_reset("h-reset", "$argon2id$again", now).await,
        Err(CoreError::Gone(_))
    ));
    // An invite is not a reset link, nor the other way round.
    s.insert_setup_link(&link(a.id, "h-inv2", LinkPurpose::Invite, None))
        .await
        .unwrap();
    assert!(matches!(
        s.redeem_reset("h-inv2", "$argon2id$x", now).await,
        Err(CoreError::Gone(_))
    ));

    // Revoked and expired links cannot be redeemed; revoking twice finds nothing.
    let l = s
        .insert_setup_link(&link(a.id, "h-revoke", LinkPurpose::Invite, None))
        .await
        .unwrap();
    assert!(
        !s.revoke_setup_link(b.id, l.id, now).await.unwrap(),
        "another tenant's"
    );
    assert!(s.revoke_setup_link(a.id, l.id, now).await.unwrap());
    assert!(!s.revoke_setup_link(a.id, l.id, now).await.unwrap());
    assert!(matches!(
        s.redeem_invite("h-revoke", "ca-late", "$argon2id$x", now)
            .await,
        Err(CoreError::Gone(_))
    ));
    let later = now + Duration::hours(2);
    assert!(matches!(
        s.redeem_invite("h-inv2", "ca-late", "$argon2id$x", later)
            .await,
        Err(CoreError::Gone(_))
    ));

    // A deleted tenant takes its grants and links; a deleted operator its grants.
    assert!(s.delete_tenant("ca-two").await.unwrap());
    let back = s.operator_by_name("ca-admin").await.unwrap().unwrap();
    assert_eq!(back.role.grants().len(), 1);
    assert!(s.delete_operator("ca-admin").await.unwrap());
    assert!(s.tenant_admins(a.id).await.unwrap().is_empty());
    assert!(s.delete_tenant("ca-one").await.unwrap());
    assert!(s.setup_link("h-inv2").await.unwrap().is_none());
    assert!(s.delete_operator("ca-root").await.unwrap());
    audit(s).await;
}

/// Audited changes: the row with the change, none when the change fails or does nothing;
/// filters, paging, the sweep.
async fn audit(s: &Arc<dyn Store>) {
    let actor = Actor {
        name: "root".into(),
        kind: ActorKind::InstanceAdmin,
        address: Some("192.0.2.1".into()),
    };
    let entry = |a, target: &str| AuditEntry::new(&actor, a, target);
    let AuditOutcome::Tenant(t) = s
        .audited(
            &entry(AuditAction::TenantCreated, "cu-one"),
            AuditedChange::CreateTenant {
                slug: "cu-one".into(),
                name: "One".into(),
            },
        )
        .await
        .unwrap()
    else {
        panic!("a tenant");
    };
    // A taken slug: no tenant, no row.
    assert!(matches!(
        s.audited(
            &entry(AuditAction::TenantCreated, "cu-one again"),
            AuditedChange::CreateTenant {
                slug: "cu-one".into(),
                name: "Again".into(),
            },
        )
        .await,
        Err(CoreError::Conflict(_))
    ));
    // An invite whose name is taken: the link stays unused and no row is written.
    let made = s
        .audited(
            &entry(AuditAction::SetupLinkMade, "invite").on(&t),
            AuditedChange::InsertSetupLink(link(t.id, "cu-h", LinkPurpose::Invite, None)),
        )
        .await
        .unwrap();
    assert!(matches!(made, AuditOutcome::Link(_)));
    s.create_operator("cu-taken", "$argon2id$x", Timestamp::now())
        .await
        .unwrap();
    let redeem = |name: &str| AuditedChange::RedeemInvite {
        token_hash: "cu-h".into(),
        username: name.into(),
        hash: "$argon2id$y".into(),
    };
    assert!(matches!(
        s.audited(
            &entry(AuditAction::SetupLinkUsed, "link").on(&t),
            redeem("cu-taken")
        )
        .await,
        Err(CoreError::Conflict(_))
    ));
    // Revoking nothing: no row either.
    let nothing = s
        .audited(
            &entry(AuditAction::TokenRevoked, "none").on(&t),
            AuditedChange::RevokeToken {
                tenant_id: t.id,
                id: "tok_none".into(),
            },
        )
        .await
        .unwrap();
    assert!(!nothing.done());
    let opener = Actor {
        name: "cu-new".into(),
        kind: ActorKind::SetupLink,
        address: None,
    };
    let used = AuditEntry::new(&opener, AuditAction::SetupLinkUsed, "link").on(&t);
    s.audited(&used, redeem("cu-new")).await.unwrap();
    s.record_audit(&entry(AuditAction::SignedIn, "root"))
        .await
        .unwrap();

    let all =
        |q: AuditQuery| async move { s.audit_log(&AuditQuery { limit: 100, ..q }).await.unwrap() };
    let mine: Vec<String> = all(AuditQuery::default())
        .await
        .iter()
        .filter(|r| r.entry.actor.name == "root")
        .map(|r| r.entry.action.0.as_str().to_string())
        .collect();
    assert_eq!(
        mine,
        ["console.signed_in", "setup_link.made", "tenant.created"],
        "newest first; nothing for what failed or did nothing"
    );
    let used = all(AuditQuery {
        action: Some(AuditAction::SetupLinkUsed),
        ..Default::default()
    })
    .await;
    assert_eq!(used.len(), 1);
    assert_eq!(
        (
            used[0].entry.actor.name.as_str(),
            used[0].entry.tenant.as_deref()
        ),
        ("cu-new", Some("cu-one"))
    );
    let of_tenant = all(AuditQuery {
        tenant_ids: Some(vec![t.id]),
        ..Default::default()
    })
    .await;
    assert_eq!(
        of_tenant.len(),
        3,
        "the tenant made, the link made and used: {of_tenant:?}"
    );
    assert!(
        all(AuditQuery {
            tenant_ids: Some(vec![]),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    let page = all(AuditQuery {
        actor: Some("root".into()),
        before_id: Some(of_tenant[0].id),
        ..Default::default()
    })
    .await;
    assert!(page.iter().all(|r| r.id < of_tenant[0].id));
    assert_eq!(page[0].entry.actor.address.as_deref(), Some("192.0.2.1"));
    // The row outlives its tenant; the sweep takes what is past the retention.
    s.delete_tenant("cu-one").await.unwrap();
    assert!(all(AuditQuery::default()).await.len() >= 4);
    let n = s
        .sweep_audit(Timestamp::now() + Duration::seconds(1), 1_000)
        .await
        .unwrap();
    assert!(n >= 4, "{n}");
    assert!(all(AuditQuery::default()).await.is_empty());
    s.delete_operator("cu-taken").await.unwrap();
    s.delete_operator("cu-new").await.unwrap();
}
