//! Keys derived from names, recomputed once when their derivation changes. `nfc`: the fold of
//! case-insensitive names (`scim_proto::text::fold`) gained width mapping and Unicode NFC;
//! rows written before keep their old keys until this runs, once, after the migrations. Only
//! rows whose keys hold non-ASCII text can change. Two rows that now fold alike (two
//! accounts a person could not tell apart, made before) keep their old keys, and a warning
//! names them: an operator decides which one stays.

use crate::StoreError;
use crate::conn::Conn;
use crate::sql_filter::Arg;
use scim_core::resource::fold;

/// Non-ASCII text in `col`, in each dialect.
fn non_ascii(db: &Conn<'_>, col: &str) -> String {
    match db {
        Conn::Pg(_) => format!("octet_length({col}) <> length({col})"),
        Conn::Lite(_) => format!("length(CAST({col} AS BLOB)) <> length({col})"),
    }
}

/// Recomputes the keys if not done yet; the rows changed.
pub(crate) async fn rekey_nfc(db: &mut Conn<'_>) -> Result<u64, StoreError> {
    if db
        .fetch_optional("SELECT 1 FROM scimd_rekeys WHERE name = 'nfc'", &[])
        .await?
        .is_some()
    {
        return Ok(0);
    }
    let mut changed = 0;
    let sql = format!(
        "SELECT seq, tenant_id, kind, unique_name, display_name, unique_name_ci, display_name_ci \
         FROM resources WHERE {} OR {}",
        non_ascii(db, "unique_name_ci"),
        non_ascii(db, "display_name_ci")
    );
    for row in db.fetch(&sql, &[]).await? {
        let (seq, tenant, kind) = (row.int(0)?, row.int(1)?, row.text(2)?);
        let unique = row.opt_text(3)?.map(|n| fold(&n));
        let display = row.opt_text(4)?.map(|n| fold(&n));
        if unique == row.opt_text(5)? && display == row.opt_text(6)? {
            continue;
        }
        let taken = match &unique {
            Some(u) => db
                .fetch_optional(
                    "SELECT id FROM resources WHERE tenant_id = $1 AND kind = $2 \
                     AND unique_name_ci = $3 AND seq <> $4",
                    &[
                        Arg::Int(tenant),
                        Arg::Text(kind.clone()),
                        Arg::Text(u.clone()),
                        Arg::Int(seq),
                    ],
                )
                .await?
                .map(|r| r.text(0))
                .transpose()?,
            None => None,
        };
        if let Some(other) = taken {
            tracing::warn!(tenant, kind, seq, other = %other, "two names fold alike since names are normalised; the older keys stay until one is renamed");
            continue;
        }
        db.exec(
            "UPDATE resources SET unique_name_ci = $1, display_name_ci = $2 WHERE seq = $3",
            &[
                Arg::opt_text(unique.as_deref()),
                Arg::opt_text(display.as_deref()),
                Arg::Int(seq),
            ],
        )
        .await?;
        changed += 1;
    }
    let emails = format!(
        "SELECT DISTINCT value_ci FROM resource_emails WHERE {}",
        non_ascii(db, "value_ci")
    );
    for row in db.fetch(&emails, &[]).await? {
        let old = row.text(0)?;
        let new = fold(&old);
        if new != old {
            db.exec(
                "UPDATE resource_emails SET value_ci = $1 WHERE value_ci = $2",
                &[Arg::Text(new), Arg::Text(old)],
            )
            .await?;
        }
    }
    // Two nodes starting together may both get here: the second one's row is a no-op.
    db.exec(
        "INSERT INTO scimd_rekeys (name) VALUES ('nfc') ON CONFLICT DO NOTHING",
        &[],
    )
    .await?;
    Ok(changed)
}
