//! Tokens of the filter and PATCH-path grammars.
//!
//! A "word" is any run of characters other than whitespace, parentheses, brackets and `"`:
//! the parser decides from context whether it is an attribute path, a keyword, an operator or
//! a bare literal (numbers, `true`, and the unquoted strings legacy Entra examples send).

use super::SyntaxError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Word(String),
    Str(String),
    Eof,
}

#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }

    fn skip_ws(&mut self) {
        let rest = &self.src[self.pos..];
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
    }

    /// Returns the next token and the byte offset it started at.
    pub fn next_token(&mut self) -> Result<(Token, usize), SyntaxError> {
        self.skip_ws();
        let start = self.pos;
        let rest = &self.src[self.pos..];
        let Some(c) = rest.chars().next() else {
            return Ok((Token::Eof, start));
        };
        let single = match c {
            '(' => Some(Token::LParen),
            ')' => Some(Token::RParen),
            '[' => Some(Token::LBracket),
            ']' => Some(Token::RBracket),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return Ok((t, start));
        }
        if c == '"' {
            return self.string(start).map(|s| (Token::Str(s), start));
        }
        let len = rest
            .char_indices()
            .find(|&(_, ch)| ch.is_whitespace() || matches!(ch, '(' | ')' | '[' | ']' | '"'))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        self.pos += len;
        Ok((Token::Word(rest[..len].to_string()), start))
    }

    /// A JSON string literal (RFC 8259 §7 escapes), decoded by serde_json once its end is found.
    fn string(&mut self, start: usize) -> Result<String, SyntaxError> {
        let bytes = self.src.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    let lit = &self.src[start..=i];
                    self.pos = i + 1;
                    return serde_json::from_str::<String>(lit).map_err(|e| SyntaxError {
                        position: start,
                        message: format!("invalid string literal ({e})"),
                    });
                }
                _ => i += 1,
            }
        }
        Err(SyntaxError {
            position: start,
            message: "unterminated string literal".into(),
        })
    }
}
