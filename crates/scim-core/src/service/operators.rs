//! Console operators and their sessions: create, reset, sign in (with the lockout policy),
//! sign out. Used by `scimd admin` and the console alike.

use crate::Store;
use crate::audit::{Actor, AuditAction, AuditEntry, AuditOutcome, AuditedChange};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::operator::{
    Operator, SESSION_TTL, SessionRecord, SignInError, decoy_hash, hash_password,
    normalize_username, random_token, validate_password, verify_password,
};
use crate::sealing::SealingKey;
use crate::second_factor;
use crate::token::hash_secret;
use std::sync::Arc;

/// A new session: the cookie value to send once, and the record to store.
pub struct NewSession {
    pub cookie_value: String,
    pub record: SessionRecord,
    pub operator: Operator,
}

/// Operator accounts and sessions over the store.
#[derive(Clone)]
pub struct OperatorService {
    operators: Arc<dyn crate::store::OperatorStore>,
    sessions: Arc<dyn crate::store::SessionStore>,
    audit: Arc<dyn crate::store::AuditStore>,
}

impl OperatorService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            operators: store.clone(),
            sessions: store.clone(),
            audit: store,
        }
    }

    pub async fn list(&self) -> CoreResult<Vec<Operator>> {
        self.operators.operators().await
    }

    /// Deletes an operator (its sessions go with it); `NotFound` when there is none.
    pub async fn delete(&self, username: &str, actor: &Actor) -> CoreResult<()> {
        let name = normalize_username(username)?;
        let entry = AuditEntry::new(actor, AuditAction::OperatorDeleted, &name);
        let change = AuditedChange::DeleteOperator {
            username: name.clone(),
        };
        if self.audit.audited(&entry, change).await?.done() {
            Ok(())
        } else {
            Err(CoreError::NotFound(format!("operator '{name}'")))
        }
    }

    /// A new instance admin.
    pub async fn create(
        &self,
        username: &str,
        password: &str,
        actor: &Actor,
    ) -> CoreResult<Operator> {
        let username = normalize_username(username)?;
        validate_password(password)?;
        let pw = password.to_string();
        let hash = blocking(move || hash_password(&pw)).await?;
        let entry = AuditEntry::new(actor, AuditAction::OperatorCreated, &username);
        match self
            .audit
            .audited(&entry, AuditedChange::CreateOperator { username, hash })
            .await?
        {
            AuditOutcome::Operator(o) => Ok(o),
            other => Err(CoreError::Internal(format!("operator create: {other:?}"))),
        }
    }

    /// Sets a new password and clears any lockout.
    pub async fn reset_password(
        &self,
        username: &str,
        password: &str,
        actor: &Actor,
    ) -> CoreResult<()> {
        let username = normalize_username(username)?;
        validate_password(password)?;
        let pw = password.to_string();
        let hash = blocking(move || hash_password(&pw)).await?;
        let entry = AuditEntry::new(actor, AuditAction::PasswordSet, &username);
        let change = AuditedChange::SetPassword {
            username: username.clone(),
            hash,
        };
        if self.audit.audited(&entry, change).await?.done() {
            Ok(())
        } else {
            Err(CoreError::NotFound(format!("operator '{username}'")))
        }
    }

    /// Checks the password and opens a session (no second-factor step: the console's
    /// sign-in uses [`Self::check_password`] and [`Self::open_session`]).
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        now: Timestamp,
    ) -> Result<NewSession, SignInError> {
        let operator = self.check_password(username, password).await?;
        Ok(self.open_session(operator, now).await?)
    }

    /// The operator whose password this is. Throttling is the caller's (per client address
    /// and name, before this runs), so nobody can lock an operator out for everyone.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Operator, SignInError> {
        let Ok(username) = normalize_username(username) else {
            return Err(SignInError::BadCredentials);
        };
        let operator = self.operators.operator_by_name(&username).await?;
        // An unknown name is checked against a decoy hash and a wrong password writes
        // nothing: both answers take the same time and look the same.
        let phc = match &operator {
            Some(o) => o.password_hash.clone(),
            None => decoy_hash()?.to_string(),
        };
        let pw = password.to_string();
        let ok = blocking(move || Ok(verify_password(&phc, &pw))).await?;
        operator.filter(|_| ok).ok_or(SignInError::BadCredentials)
    }

    /// A new session for an operator who has proven who they are.
    pub async fn open_session(&self, operator: Operator, now: Timestamp) -> CoreResult<NewSession> {
        self.operators
            .operator_login_succeeded(operator.id, now)
            .await?;
        let cookie_value = random_token();
        let record = SessionRecord {
            id_hash: hash_secret(&cookie_value),
            operator_id: operator.id,
            csrf_token: random_token(),
            created_at: now,
            expires_at: now + SESSION_TTL,
        };
        self.sessions.insert_session(&record).await?;
        Ok(NewSession {
            cookie_value,
            record,
            operator,
        })
    }

    pub async fn by_name(&self, username: &str) -> CoreResult<Option<Operator>> {
        self.operators
            .operator_by_name(&normalize_username(username)?)
            .await
    }

    /// Turns the second factor on once a code from the app matches `secret`: the secret is
    /// sealed and stored with ten new recovery codes, which are returned to show once.
    pub async fn enable_second_factor(
        &self,
        op: &Operator,
        secret: &str,
        code: &str,
        key: &SealingKey,
        actor: &Actor,
    ) -> CoreResult<Vec<String>> {
        let unix = unix_now();
        let Some(step) = second_factor::verify(secret, code, unix, None) else {
            return Err(CoreError::Invalid(
                "that code does not match: check the app's clock and type the code it shows now"
                    .into(),
            ));
        };
        let sealed = key.seal(&totp_owner(op.id), secret)?;
        let codes = second_factor::new_recovery_codes();
        let recovery_hashes = codes
            .iter()
            .map(|c| hash_secret(&second_factor::normalize_recovery(c)))
            .collect();
        let entry = AuditEntry::new(
            actor,
            AuditAction::SecondFactorChanged,
            format!("{}: on", op.username),
        );
        let change = AuditedChange::SetSecondFactor {
            operator_id: op.id,
            sealed: Some(sealed),
            recovery_hashes,
        };
        self.audit.audited(&entry, change).await?;
        // The code that turned it on is spent.
        self.operators.totp_step_used(op.id, step).await?;
        Ok(codes)
    }

    /// Turns the second factor off (the caller has checked a code first).
    pub async fn disable_second_factor(&self, op: &Operator, actor: &Actor) -> CoreResult<()> {
        let entry = AuditEntry::new(
            actor,
            AuditAction::SecondFactorChanged,
            format!("{}: off", op.username),
        );
        let change = AuditedChange::SetSecondFactor {
            operator_id: op.id,
            sealed: None,
            recovery_hashes: Vec::new(),
        };
        self.audit.audited(&entry, change).await?;
        Ok(())
    }

    /// Which kind of code `code` is, if it is the operator's current TOTP code (not used
    /// before) or one of their unused recovery codes (now spent); `None`: neither.
    pub async fn check_second_factor(
        &self,
        op: &Operator,
        code: &str,
        key: &SealingKey,
        now: Timestamp,
    ) -> CoreResult<Option<CodeKind>> {
        let Some(sealed) = &op.totp_sealed else {
            return Ok(None);
        };
        let secret = key.open(&totp_owner(op.id), sealed)?;
        let unix = u64::try_from(now.as_micros() / 1_000_000).unwrap_or(0);
        if let Some(step) = second_factor::verify(&secret, code, unix, None) {
            let fresh = self.operators.totp_step_used(op.id, step).await?;
            return Ok(fresh.then_some(CodeKind::Totp));
        }
        let typed = second_factor::normalize_recovery(code);
        if typed.len() != 10 {
            return Ok(None);
        }
        let spent = self
            .operators
            .use_recovery_code(op.id, &hash_secret(&typed), now)
            .await?;
        Ok(spent.then_some(CodeKind::Recovery))
    }

    /// Counts a wrong code for the operator (whatever the browser or address); after
    /// [`CODE_FAILURES`] in a row the code step is closed for [`CODE_LOCK`] (returned). A
    /// right code (a session opened) clears the count.
    pub async fn second_factor_failed(
        &self,
        op: &Operator,
        now: Timestamp,
    ) -> CoreResult<Option<Timestamp>> {
        let n = self.operators.operator_login_failed(op.id).await?;
        if n % CODE_FAILURES == 0 {
            let until = now + CODE_LOCK;
            self.operators.lock_operator(op.id, until).await?;
            return Ok(Some(until));
        }
        Ok(None)
    }

    pub async fn recovery_codes_left(&self, op: &Operator) -> CoreResult<u32> {
        self.operators.recovery_codes_left(op.id).await
    }

    /// The live session for a cookie value, with its operator.
    pub async fn session(
        &self,
        cookie_value: &str,
        now: Timestamp,
    ) -> CoreResult<Option<(SessionRecord, Operator)>> {
        self.sessions.session(&hash_secret(cookie_value), now).await
    }

    pub async fn sign_out(&self, cookie_value: &str) -> CoreResult<()> {
        self.sessions
            .delete_session(&hash_secret(cookie_value))
            .await
    }
}

/// What a second-factor code was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    Totp,
    Recovery,
}

/// Wrong codes in a row before the code step closes, and for how long: at most about 480
/// guesses a day against a million codes (three valid at a time).
pub const CODE_FAILURES: i64 = 5;
pub const CODE_LOCK: time::Duration = time::Duration::minutes(15);

/// What a TOTP secret is sealed for (an operator's, not another's).
fn totp_owner(operator_id: i64) -> String {
    format!("totp:{operator_id}")
}

fn unix_now() -> u64 {
    u64::try_from(Timestamp::now().as_micros() / 1_000_000).unwrap_or(0)
}

/// Argon2 hashes running at once: one per core. Each holds 19 MiB, so an unbounded burst of
/// sign-ins would exhaust memory; past this many the next waits, and one that cannot start
/// within [`HASH_WAIT`] is refused (`Busy`, a 503).
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});
const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs CPU-heavy work (Argon2) on the blocking pool, bounded by [`HASHING`].
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> CoreResult<T> + Send + 'static,
) -> CoreResult<T> {
    let _permit = match tokio::time::timeout(HASH_WAIT, HASHING.acquire()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(CoreError::Internal(format!("hashing semaphore: {e}"))),
        Err(_) => {
            return Err(CoreError::Busy(
                "too many password checks at once; retry in a second".into(),
            ));
        }
    };
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CoreError::Internal(format!("password hashing task failed: {e}")))?
}
