//! Console forms that carry a file (`multipart/form-data`, RFC 7578): the New app form's
//! CSV or JSON upload. The CSRF guard reads the `csrf` field from such a body as it does
//! from a urlencoded one, and the [`UploadForm`] extractor gives a handler the text fields
//! as its usual form struct plus the files.

use crate::error::AppError;
use axum::body::{Bytes, to_bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

/// The largest console upload (a source file of a few hundred thousand people).
pub const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;

/// Uploads read at once (each holds its body, then what it parses into).
pub const PARALLEL_UPLOADS: usize = 1;
/// The longest file name kept (a file system's usual limit).
pub const MAX_FILE_NAME: usize = 255;

/// A file sent with a form.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// The form field it came in.
    pub field: String,
    /// The name the browser gave (no directories).
    pub name: String,
    pub content: Bytes,
}

/// The parts of a multipart body: text fields in order, and the files.
#[derive(Debug, Default)]
pub struct Parts {
    pub fields: Vec<(String, String)>,
    pub files: Vec<UploadedFile>,
}

/// The multipart boundary, when the request is `multipart/form-data`.
pub fn boundary(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    multer::parse_boundary(ct).ok()
}

/// Splits a multipart body held in memory. A file input left empty (no name, no bytes) is
/// no file.
pub async fn parse(body: Bytes, boundary: &str) -> Result<Parts, AppError> {
    let bad = |e: multer::Error| AppError::new(400, format!("the form could not be read: {e}"));
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut m = multer::Multipart::new(stream, boundary);
    let mut parts = Parts::default();
    while let Some(field) = m.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        match field.file_name().map(str::to_string) {
            Some(file) => {
                let content = field.bytes().await.map_err(bad)?;
                // Browsers send the base name; strip any path a client added anyway.
                let file = file
                    .rsplit(['/', '\\'])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if file.len() > MAX_FILE_NAME {
                    return Err(AppError::new(
                        400,
                        format!(
                            "the file name is longer than {MAX_FILE_NAME} bytes: rename the file"
                        ),
                    ));
                }
                if !file.is_empty() || !content.is_empty() {
                    parts.files.push(UploadedFile {
                        field: name,
                        name: file,
                        content,
                    });
                }
            }
            None => {
                let value = field.text().await.map_err(bad)?;
                parts.fields.push((name, value));
            }
        }
    }
    Ok(parts)
}

/// One text field of a multipart body, read without copying the files it carries (the CSRF
/// guard's look at `csrf`).
pub async fn text_field(
    body: Bytes,
    boundary: &str,
    want: &str,
) -> Result<Option<String>, AppError> {
    let bad = |e: multer::Error| AppError::new(400, format!("the form could not be read: {e}"));
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut m = multer::Multipart::new(stream, boundary);
    while let Some(field) = m.next_field().await.map_err(bad)? {
        if field.file_name().is_none() && field.name() == Some(want) {
            return Ok(Some(field.text().await.map_err(bad)?));
        }
    }
    Ok(None)
}

/// A console form as `T` (from a urlencoded or a multipart body) with the files it carried.
pub struct UploadForm<T> {
    pub form: T,
    pub files: Vec<UploadedFile>,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for UploadForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, AppError> {
        let boundary = boundary(req.headers());
        let body = to_bytes(req.into_body(), MAX_UPLOAD_BYTES)
            .await
            .map_err(|_| too_large(MAX_UPLOAD_BYTES))?;
        let (fields, files) = match boundary {
            Some(b) => {
                let p = parse(body, &b).await?;
                (p.fields, p.files)
            }
            None => (
                serde_urlencoded::from_bytes(&body)
                    .map_err(|e| AppError::new(400, format!("the form could not be read: {e}")))?,
                Vec::new(),
            ),
        };
        // The text fields go through the same deserializer as a urlencoded form.
        let encoded = serde_urlencoded::to_string(&fields)
            .map_err(|e| AppError::new(400, format!("the form could not be read: {e}")))?;
        let form = serde_urlencoded::from_str(&encoded)
            .map_err(|e| AppError::new(400, format!("the form could not be read: {e}")))?;
        Ok(Self { form, files })
    }
}

/// A body over `limit` bytes.
pub fn too_large(limit: usize) -> AppError {
    AppError::new(
        413,
        format!("the form is larger than the limit of {} KiB", limit / 1024),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[(&str, Option<&str>, &str)]) -> Bytes {
        let mut b = String::new();
        for (name, file, value) in parts {
            b.push_str("--XyZ\r\n");
            match file {
                Some(f) => b.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n"
                )),
                None => b.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                )),
            }
            b.push_str(value);
            b.push_str("\r\n");
        }
        b.push_str("--XyZ--\r\n");
        Bytes::from(b)
    }

    #[tokio::test]
    async fn fields_and_files_are_split_and_empty_file_inputs_dropped() {
        let p = parse(
            body(&[
                ("csrf", None, "t0k"),
                (
                    "source_file",
                    Some("C:\\hr\\people.csv"),
                    "id,userName\n1,a\n",
                ),
                ("other_file", Some(""), ""),
                ("name", None, "Payroll é"),
            ]),
            "XyZ",
        )
        .await
        .unwrap();
        assert_eq!(
            p.fields,
            vec![
                ("csrf".to_string(), "t0k".to_string()),
                ("name".to_string(), "Payroll é".to_string())
            ]
        );
        assert_eq!(p.files.len(), 1);
        assert_eq!(p.files[0].name, "people.csv");
        assert_eq!(p.files[0].field, "source_file");
        assert_eq!(&p.files[0].content[..], b"id,userName\n1,a\n");
    }

    #[tokio::test]
    async fn a_torn_body_is_a_400() {
        let e = parse(Bytes::from_static(b"--XyZ\r\nContent-Disp"), "XyZ")
            .await
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
    }
}
