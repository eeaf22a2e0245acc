//! E-mail out through the operator's SMTP server (`smtp_url`, `smtp_from`): the engine's
//! notices and the console's setup links use the same [`Mailer`].

use lettre::AsyncTransport;
use lettre::message::{Mailbox, header::ContentType};

/// Why a message could not be set up or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The settings or an address are wrong (the operator can fix them).
    #[error("{0}")]
    Setup(String),
    /// The SMTP server could not be reached or refused the message.
    #[error("SMTP: {0}")]
    Send(#[source] lettre::transport::smtp::Error),
}

/// Plain-text mail through one SMTP server, from one address.
pub struct Mailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// `url` in lettre's forms: `smtp://host:port` (plain), `smtp://host:port?tls=required`
    /// (STARTTLS), `smtps://host:port` (TLS), with `user:password@` for a login.
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Setup(format!("smtp_url is not an SMTP URL: {e}")))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        let from = from
            .parse()
            .map_err(|e| MailError::Setup(format!("smtp_from is not an e-mail address: {e}")))?;
        Ok(Self { transport, from })
    }

    /// Whether `to` is an address a message can go to (checked before anything is made).
    pub fn check_address(to: &str) -> Result<Mailbox, MailError> {
        to.trim()
            .parse()
            .map_err(|e| MailError::Setup(format!("'{to}' is not an e-mail address: {e}")))
    }

    /// Sends `body` (plain text) to every address in `to`.
    pub async fn send(&self, to: &[&str], subject: &str, body: String) -> Result<(), MailError> {
        let mut m = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for addr in to {
            m = m.to(Self::check_address(addr)?);
        }
        let message = m
            .body(body)
            .map_err(|e| MailError::Setup(format!("cannot build the e-mail: {e}")))?;
        self.transport
            .send(message)
            .await
            .map_err(MailError::Send)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_addresses_are_checked() {
        assert!(Mailer::new("smtp://127.0.0.1:2525", "scimd@example.com").is_ok());
        assert!(Mailer::new("http://x", "scimd@example.com").is_err());
        assert!(Mailer::new("smtp://127.0.0.1:2525", "not an address").is_err());
        assert!(Mailer::check_address(" ann@example.com ").is_ok());
        for bad in ["", "ann", "ann@", "a@b\r\nBcc: x@y"] {
            assert!(Mailer::check_address(bad).is_err(), "{bad:?}");
        }
    }
}
