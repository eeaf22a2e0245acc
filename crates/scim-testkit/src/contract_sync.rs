//! The store contract for the provisioning engine's records (`SyncStore`): every record
//! reads back as written, typed; writes fenced by a lease; one-instant snapshots; a new job
//! and its file together or not at all.

use scim_core::{
    CoreError, CycleCounts, CycleMode, CycleRecord, CycleStatus, ErrorCode, Escrow, Exported,
    JobState, LastCycle, LeaseFence, LedgerEntry, LedgerState, LogChanges, Pending, PendingStep,
    PropertyChange, QuarantineReason, ResourceKind, SourceFile, SourceFileInfo, SourceObject,
    Status, Step, StepKind, Store, SyncAction, SyncJobRecord, SyncLogQuery, SyncLogRecord,
    Timestamp, Trigger, Verb,
};
use serde_json::json;
use std::sync::Arc;
use time::Duration;

pub async fn run_all(s: &Arc<dyn Store>) {
    fenced_writes(s).await;
    source_files(s).await;
    typed_records_read_back(s).await;
    a_new_job_and_its_file_together(s).await;
    old_cycles_are_swept(s).await;
}

/// The retention sweep removes cycles older than the cut, but never a job's newest one
/// (its "last cycle"), and no other job's.
async fn old_cycles_are_swept(s: &Arc<dyn Store>) {
    let now = Timestamp::from_micros(1_700_000_000_000_000);
    let cycle = |job: &str, id: &str, days_ago: i64| CycleRecord {
        job: job.into(),
        cycle_id: id.into(),
        started_at: now - Duration::days(days_ago),
        finished_at: Some(now - Duration::days(days_ago)),
        mode: CycleMode::Incremental,
        status: CycleStatus::Failed,
        counts: CycleCounts::default(),
    };
    for name in ["sweep-a", "sweep-b"] {
        s.put_job(&job(name, now)).await.unwrap();
    }
    for c in [
        cycle("sweep-a", "a-old-1", 60),
        cycle("sweep-a", "a-old-2", 45),
        cycle("sweep-a", "a-new", 1),
        cycle("sweep-b", "b-only", 90),
    ] {
        s.save_cycle(&c).await.unwrap();
    }
    let mut swept = 0;
    loop {
        let n = s.sweep_sync_log(now - Duration::days(30), 1).await.unwrap();
        swept += n;
        if n == 0 {
            break;
        }
    }
    assert_eq!(swept, 2);
    let ids = |v: Vec<CycleRecord>| v.into_iter().map(|c| c.cycle_id).collect::<Vec<_>>();
    assert_eq!(ids(s.cycles("sweep-a", 10).await.unwrap()), ["a-new"]);
    assert_eq!(
        ids(s.cycles("sweep-b", 10).await.unwrap()),
        ["b-only"],
        "a job's newest cycle stays"
    );
}

/// A state that says which write it came from.
fn marked(n: &str) -> JobState {
    JobState {
        fingerprint: Some(n.into()),
        ..JobState::default()
    }
}

fn job(name: &str, now: Timestamp) -> SyncJobRecord {
    SyncJobRecord {
        name: name.into(),
        spec: "{}".into(),
        sealed_secret: None,
        enabled: false,
        state: JobState::default(),
        created_at: now,
        updated_at: now,
    }
}

/// Every typed part of a ledger row, a log row, a cycle and a job's state reads back as it
/// was written (enums by name, structured parts as JSON), on both backends.
async fn typed_records_read_back(s: &Arc<dyn Store>) {
    let now = Timestamp::from_micros(1_700_000_000_000_000);
    let mut state = JobState {
        paused: true,
        initial_done: Some(true),
        fingerprint: Some("f".into()),
        watermark: Some(json!({"mode": "poll", "since": "20261201000000Z", "full_at": 5})),
        throttled_until: Some(now + Duration::minutes(2)),
        last_cycle: Some(LastCycle {
            id: "c".into(),
            at: now,
            status: CycleStatus::CompletedWithFailures,
            error: Some("x".into()),
        }),
        ..JobState::default()
    };
    state.quarantine = Some(scim_core::Quarantine {
        reason: QuarantineReason::Compliance,
        detail: "d".into(),
        since: now,
    });
    let mut j = job("c-typed", now);
    j.state = state.clone();
    s.put_job(&j).await.unwrap();
    assert_eq!(s.job("c-typed").await.unwrap().unwrap().state, state);
    let mut snapshot = SourceObject::new(ResourceKind::Group, "g1");
    snapshot.members = vec!["u1".into()];
    snapshot
        .attributes
        .insert("displayName".into(), json!("Staff"));
    let mut exported = Exported::default();
    exported.values.insert("displayName".into(), json!("Staff"));
    exported.members.insert("u1".into(), "t-u1".into());
    exported.unresolved = true;
    let entry = LedgerEntry {
        job: "c-typed".into(),
        kind: ResourceKind::Group,
        source_id: "g1".into(),
        target_id: Some("t-g1".into()),
        state: LedgerState::Disabled,
        source: Some(snapshot),
        gone_since: Some(now),
        exported,
        pending: Some(Pending {
            step: PendingStep::Staged,
            verb: Verb::Delete,
            trigger: Trigger::Deleted,
        }),
        due_at: Some(now + Duration::days(30)),
        escrow: Some(Escrow {
            failures: 2,
            since: now,
            retry_at: now + Duration::hours(12),
        }),
        updated_at: now,
    };
    let log = SyncLogRecord {
        seq: 0,
        job: "c-typed".into(),
        cycle_id: "c".into(),
        change_id: "ch".into(),
        at: now,
        kind: ResourceKind::Group,
        source_id: "g1".into(),
        target_id: Some("t-g1".into()),
        display: "Staff".into(),
        action: SyncAction::StagedDelete,
        status: Status::Warning,
        steps: vec![Step::new(
            StepKind::ReferenceResolution,
            Status::Warning,
            "w",
        )],
        changes: LogChanges {
            attributes: vec![PropertyChange {
                path: "title".into(),
                old: None,
                new: Some(json!("x")),
                redacted: true,
            }],
            members_added: vec!["u1".into()],
            members_removed: vec![],
        },
        error_code: Some(ErrorCode::DeletionThresholdExceeded),
        duration_ms: 3,
    };
    s.record_sync(
        None,
        std::slice::from_ref(&entry),
        std::slice::from_ref(&log),
    )
    .await
    .unwrap();
    assert_eq!(s.ledger("c-typed").await.unwrap(), vec![entry]);
    let q = SyncLogQuery {
        action: Some(SyncAction::StagedDelete),
        status: Some(Status::Warning),
        limit: 10,
        ..SyncLogQuery::default()
    };
    let read = s.sync_log("c-typed", &q).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(
        SyncLogRecord {
            seq: 0,
            ..read[0].clone()
        },
        log
    );
    let other = SyncLogQuery {
        status: Some(Status::Failure),
        limit: 10,
        ..SyncLogQuery::default()
    };
    assert!(s.sync_log("c-typed", &other).await.unwrap().is_empty());
    let cycle = CycleRecord {
        job: "c-typed".into(),
        cycle_id: "c".into(),
        started_at: now,
        finished_at: None,
        mode: CycleMode::Incremental,
        status: CycleStatus::Stopped,
        counts: CycleCounts {
            planned: 4,
            actions: [(SyncAction::Create, 2)].into(),
            statuses: [(Status::Failure, 1)].into(),
            stopped: Some("paused".into()),
            ..CycleCounts::default()
        },
    };
    s.save_cycle(&cycle).await.unwrap();
    assert_eq!(s.cycles("c-typed", 5).await.unwrap(), vec![cycle]);
    assert!(s.delete_job("c-typed").await.unwrap());
}

/// A new job is stored with its uploaded file in one transaction, and a taken name is a
/// conflict that writes neither.
async fn a_new_job_and_its_file_together(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    let file = SourceFile {
        name: "people.csv".into(),
        content: "id\n1\n".into(),
        uploaded_at: now,
    };
    s.create_job(&job("c-new", now), Some(&file)).await.unwrap();
    assert_eq!(s.source_file("c-new").await.unwrap(), Some(file.clone()));
    let other = SourceFile {
        name: "other.csv".into(),
        ..file.clone()
    };
    assert!(matches!(
        s.create_job(&job("c-new", now), Some(&other)).await,
        Err(CoreError::Conflict(_))
    ));
    assert_eq!(
        s.source_file("c-new").await.unwrap().map(|f| f.name),
        Some("people.csv".into()),
        "a refused create wrote nothing"
    );
    s.create_job(&job("c-new-nofile", now), None).await.unwrap();
    assert_eq!(s.source_file("c-new-nofile").await.unwrap(), None);
    assert!(s.delete_job("c-new").await.unwrap());
    assert!(s.delete_job("c-new-nofile").await.unwrap());
}

/// An uploaded source file is kept per job, replaced by the next upload, and deleted with
/// its job; another job's file is untouched.
async fn source_files(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    let file = |name: &str, content: &str| SourceFile {
        name: name.into(),
        content: content.into(),
        uploaded_at: now,
    };
    for job in ["c-up-a", "c-up-b"] {
        s.put_job(&SyncJobRecord {
            name: job.into(),
            spec: "{}".into(),
            sealed_secret: None,
            enabled: false,
            state: JobState::default(),
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    }
    assert_eq!(s.source_file("c-up-a").await.unwrap(), None);
    // Large enough to span many SQLite pages, with text that needs no escaping by anyone.
    let big = "id,userName\n".to_string() + &"1,é\u{1F600}'\"\n".repeat(50_000);
    s.put_source_file("c-up-a", &file("people.csv", &big))
        .await
        .unwrap();
    s.put_source_file("c-up-b", &file("b.json", "[]"))
        .await
        .unwrap();
    assert_eq!(
        s.source_file("c-up-a").await.unwrap(),
        Some(file("people.csv", &big))
    );
    assert_eq!(
        s.source_file_info("c-up-a").await.unwrap(),
        Some(SourceFileInfo {
            name: "people.csv".into(),
            bytes: big.len() as u64,
            uploaded_at: now,
        })
    );
    assert_eq!(s.source_file_info("c-up-none").await.unwrap(), None);
    s.put_source_file("c-up-a", &file("people-v2.csv", "id\n2\n"))
        .await
        .unwrap();
    assert_eq!(
        s.source_file("c-up-a").await.unwrap().unwrap().name,
        "people-v2.csv"
    );
    assert!(s.delete_job("c-up-a").await.unwrap());
    assert_eq!(s.source_file("c-up-a").await.unwrap(), None);
    assert_eq!(
        s.source_file("c-up-b").await.unwrap(),
        Some(file("b.json", "[]"))
    );
    assert!(s.delete_job("c-up-b").await.unwrap());
}

/// A write fenced by a lease lands while its holder holds the lease (or holds it expired),
/// and is refused, writing nothing, once another holder has taken it.
async fn fenced_writes(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    s.put_job(&SyncJobRecord {
        name: "c-fenced".into(),
        spec: "{}".into(),
        sealed_secret: None,
        enabled: true,
        state: JobState::default(),
        created_at: now,
        updated_at: now,
    })
    .await
    .unwrap();
    let row = |state: LedgerState| LedgerEntry {
        state,
        ..LedgerEntry::new("c-fenced", ResourceKind::User, "s1", now)
    };
    let fence = |holder: &str| LeaseFence {
        lease: "c-fence".into(),
        holder: holder.into(),
    };
    let until = now + Duration::seconds(5);
    assert!(s.try_lease("c-fence", "a", now, until).await.unwrap());
    s.record_sync(Some(&fence("a")), &[row(LedgerState::Creating)], &[])
        .await
        .unwrap();
    assert!(matches!(
        s.record_sync(Some(&fence("b")), &[row(LedgerState::Active)], &[])
            .await,
        Err(CoreError::LeaseLost(_))
    ));
    let later = until + Duration::seconds(1);
    s.set_job_state(Some(&fence("a")), "c-fenced", &marked("1"), later)
        .await
        .expect("an expired lease nobody took is still a's");
    assert!(
        s.try_lease("c-fence", "b", later, later + Duration::seconds(5))
            .await
            .unwrap()
    );
    assert!(matches!(
        s.record_sync(Some(&fence("a")), &[row(LedgerState::Active)], &[])
            .await,
        Err(CoreError::LeaseLost(_))
    ));
    assert!(matches!(
        s.set_job_state(Some(&fence("a")), "c-fenced", &marked("2"), later)
            .await,
        Err(CoreError::LeaseLost(_))
    ));
    let ledger = s.ledger("c-fenced").await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        ledger[0].state,
        LedgerState::Creating,
        "the refused write left nothing"
    );
    let job = s.job("c-fenced").await.unwrap().unwrap();
    assert_eq!(job.state, marked("1"));
    s.record_sync(Some(&fence("b")), &[row(LedgerState::Active)], &[])
        .await
        .unwrap();
    s.record_sync(None, &[row(LedgerState::Active)], &[])
        .await
        .unwrap();
    // A cycle's end, fenced: refused, it writes neither the record nor the state.
    let cycle = |status: CycleStatus| CycleRecord {
        job: "c-fenced".into(),
        cycle_id: "c1".into(),
        started_at: now,
        finished_at: Some(later),
        mode: CycleMode::Initial,
        status,
        counts: CycleCounts::default(),
    };
    assert!(matches!(
        s.finish_cycle(
            Some(&fence("a")),
            &cycle(CycleStatus::Completed),
            &marked("3"),
            later
        )
        .await,
        Err(CoreError::LeaseLost(_))
    ));
    assert!(s.cycles("c-fenced", 5).await.unwrap().is_empty());
    s.finish_cycle(
        Some(&fence("b")),
        &cycle(CycleStatus::Completed),
        &marked("4"),
        later,
    )
    .await
    .unwrap();
    let snap = s.job_snapshot("c-fenced", 5).await.unwrap().unwrap();
    assert_eq!(snap.record.state, marked("4"));
    assert_eq!(snap.cycles.len(), 1);
    assert_eq!(snap.cycles[0].status, CycleStatus::Completed);
    assert_eq!(snap.ledger.len(), 1);
    assert!(s.job_snapshot("c-none", 5).await.unwrap().is_none());
    assert!(s.delete_job("c-fenced").await.unwrap());
    snapshot_reads(s).await;
}

/// A job snapshot is one instant: while a writer records ledger row k and then cycle k
/// (separate transactions, as a cycle does), no snapshot shows cycle k without row k.
/// Reading the job, the ledger and the cycles as three statements fails this quickly.
async fn snapshot_reads(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    s.put_job(&SyncJobRecord {
        name: "c-snap".into(),
        spec: "{}".into(),
        sealed_secret: None,
        enabled: true,
        state: JobState::default(),
        created_at: now,
        updated_at: now,
    })
    .await
    .unwrap();
    const ROUNDS: i64 = 300;
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for k in 1..=ROUNDS {
                let entry = LedgerEntry {
                    state: LedgerState::Active,
                    ..LedgerEntry::new("c-snap", ResourceKind::User, &format!("s{k:04}"), now)
                };
                s.record_sync(None, &[entry], &[]).await.unwrap();
                s.save_cycle(&CycleRecord {
                    job: "c-snap".into(),
                    cycle_id: format!("{k:04}"),
                    started_at: now + Duration::microseconds(k),
                    finished_at: Some(now + Duration::microseconds(k)),
                    mode: CycleMode::Incremental,
                    status: CycleStatus::Completed,
                    counts: CycleCounts::default(),
                })
                .await
                .unwrap();
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let snap = s.job_snapshot("c-snap", 1).await.unwrap().unwrap();
        let shown: usize = snap
            .cycles
            .first()
            .map_or(0, |c| c.cycle_id.parse().unwrap());
        assert!(
            snap.ledger.len() >= shown,
            "cycle {shown} shown with {} ledger rows",
            snap.ledger.len()
        );
        reads += 1;
    }
    writer.await.unwrap();
    assert!(reads > 0);
    assert!(s.delete_job("c-snap").await.unwrap());
}
