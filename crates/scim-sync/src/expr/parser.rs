//! The expression grammar, after Entra's attribute-mapping expressions (docs/sync.md §4):
//!
//! ```text
//! expr     := call | attr | string | number | bool
//! call     := NAME "(" [arg ("," arg)*] ")"
//! arg      := expr | (nothing: a null argument, as in `Switch([x], , "a", "b")`)
//! attr     := "[" any character but "]" "]"        e.g. [name.givenName]
//! string   := '"' (char | '\' char)* '"'
//! number   := ["-"] digit+
//! bool     := "true" | "false"                     (any case)
//! ```
//! Positions in errors are character offsets (0-based) into the source text.

use super::functions::{Function, arity_ok};
use super::limits::compile_regex;

/// The longest expression accepted (Entra's limit, engine-behaviour §1.3).
pub const MAX_LEN: usize = 10_000;
/// The deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Attr {
        name: String,
        pos: usize,
    },
    Str(String),
    Int(i64),
    Bool(bool),
    /// An argument left empty.
    Null,
    /// `Replace`'s literal `regexPattern`, compiled once when parsed.
    Regex(Pattern),
    Call {
        function: Function,
        args: Vec<Expr>,
        pos: usize,
    },
}

/// A compiled regex with its source text (equal when the sources are).
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
    min_len: usize,
}

impl Pattern {
    fn compile(source: String) -> Result<Self, String> {
        let regex = compile_regex(&source).map_err(|e| e.to_string())?;
        let min_len = regex_syntax::parse(&source)
            .ok()
            .and_then(|h| h.properties().minimum_len())
            .unwrap_or(0);
        Ok(Self {
            source,
            regex,
            min_len,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn regex(&self) -> &regex::Regex {
        &self.regex
    }

    /// The fewest bytes a match spans (0 when it can match nothing).
    pub fn min_len(&self) -> usize {
        self.min_len
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("at {pos}: {message}")]
pub struct ParseError {
    pub pos: usize,
    pub message: String,
}

fn err<T>(pos: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        pos,
        message: message.into(),
    })
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        let pos = self.at;
        match self.peek() {
            None => err(pos, "expected an expression, found the end"),
            Some('[') => self.attr(),
            Some('"') => self.string(),
            Some(c) if c.is_ascii_digit() || c == '-' => self.number(),
            Some(c) if c.is_alphabetic() => self.word(),
            Some(c) => err(pos, format!("unexpected '{c}'")),
        }
    }

    fn attr(&mut self) -> Result<Expr, ParseError> {
        let pos = self.at;
        self.at += 1;
        let start = self.at;
        // Inside brackets, a quoted part may hold `]` (e.g. [emails[type eq "work"].value]):
        // count nested brackets outside quotes.
        let (mut depth, mut quoted) = (0usize, false);
        loop {
            match self.peek() {
                None => return err(pos, "unclosed '[': attribute names end with ']'"),
                Some('"') => quoted = !quoted,
                Some('[') if !quoted => depth += 1,
                Some(']') if !quoted && depth == 0 => break,
                Some(']') if !quoted => depth -= 1,
                _ => {}
            }
            self.at += 1;
        }
        let name: String = self.chars[start..self.at].iter().collect();
        self.at += 1;
        let name = name.trim().to_string();
        if name.is_empty() {
            return err(pos, "empty attribute name '[]'");
        }
        Ok(Expr::Attr { name, pos })
    }

    fn string(&mut self) -> Result<Expr, ParseError> {
        let pos = self.at;
        self.at += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return err(pos, "unclosed string: add a closing '\"'"),
                Some('"') => {
                    self.at += 1;
                    return Ok(Expr::Str(s));
                }
                Some('\\') => {
                    self.at += 1;
                    match self.peek() {
                        None => {
                            return err(self.at, "a '\\' at the end of a string escapes nothing");
                        }
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(c) => s.push(c),
                    }
                    self.at += 1;
                }
                Some(c) => {
                    s.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Result<Expr, ParseError> {
        let pos = self.at;
        if self.peek() == Some('-') {
            self.at += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        let text: String = self.chars[pos..self.at].iter().collect();
        match text.parse() {
            Ok(n) => Ok(Expr::Int(n)),
            Err(_) => err(pos, format!("'{text}' is not a whole number")),
        }
    }

    fn word(&mut self) -> Result<Expr, ParseError> {
        let pos = self.at;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.at += 1;
        }
        let name: String = self.chars[pos..self.at].iter().collect();
        self.skip_ws();
        if self.peek() != Some('(') {
            return match name.to_ascii_lowercase().as_str() {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                _ => err(
                    pos,
                    format!(
                        "'{name}' is neither a function call nor a value (attributes go in [brackets], text in \"quotes\")"
                    ),
                ),
            };
        }
        let Some(function) = Function::from_name(&name) else {
            return err(pos, format!("unknown function '{name}'"));
        };
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(pos, format!("nested deeper than {MAX_DEPTH} calls"));
        }
        self.at += 1;
        let mut args = Vec::new();
        let mut starts = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.at += 1;
        } else {
            loop {
                self.skip_ws();
                starts.push(self.at);
                let arg = if matches!(self.peek(), Some(',' | ')')) {
                    Expr::Null
                } else {
                    self.expr()?
                };
                args.push(arg);
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.at += 1,
                    Some(')') => {
                        self.at += 1;
                        break;
                    }
                    None => return err(pos, format!("unclosed '(' of {}", function.name())),
                    Some(c) => return err(self.at, format!("expected ',' or ')', found '{c}'")),
                }
            }
        }
        self.depth -= 1;
        if let Err(expected) = arity_ok(function, args.len()) {
            return err(
                pos,
                format!("{} takes {expected}, {} given", function.name(), args.len()),
            );
        }
        if function == Function::Replace
            && let Expr::Str(source) = &args[2]
        {
            args[2] = Expr::Regex(
                Pattern::compile(source.clone())
                    .or_else(|e| err(starts[2], format!("Replace: bad regexPattern: {e}")))?,
            );
        }
        Ok(Expr::Call {
            function,
            args,
            pos,
        })
    }
}

/// Parses one expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    if src.chars().count() > MAX_LEN {
        return err(MAX_LEN, format!("longer than {MAX_LEN} characters"));
    }
    let mut p = Parser {
        chars: src.chars().collect(),
        at: 0,
        depth: 0,
    };
    let e = p.expr()?;
    p.skip_ws();
    if let Some(c) = p.peek() {
        return err(p.at, format!("unexpected '{c}' after the expression"));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_point_at_the_problem() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected an expression"),
            ("Join(\",\", [a]", 0, "unclosed '('"),
            ("ToLower([mail]) x", 16, "after the expression"),
            ("Nope([a])", 0, "unknown function 'Nope'"),
            ("ToLower([a], \"x\", \"y\")", 0, "ToLower takes"),
            ("ToLower(\"abc)", 8, "unclosed string"),
            ("Left([a] 2)", 9, "expected ',' or ')'"),
            ("[mail", 0, "unclosed '['"),
            ("mail", 0, "neither a function call"),
        ];
        for (src, pos, msg) in cases {
            let e = parse(src).expect_err(src);
            assert_eq!(e.pos, *pos, "{src}: {e}");
            assert!(e.message.contains(msg), "{src}: {e}");
        }
    }

    #[test]
    fn attributes_may_hold_value_filters() {
        let e = parse(r#"[emails[type eq "work"].value]"#).expect("parses");
        assert_eq!(
            e,
            Expr::Attr {
                name: r#"emails[type eq "work"].value"#.into(),
                pos: 0
            }
        );
    }

    #[test]
    fn empty_arguments_are_null() {
        let Expr::Call { args, .. } =
            parse(r#"Switch([IsSoftDeleted], , "False", "True", "True", "False")"#)
                .expect("parses")
        else {
            panic!("not a call")
        };
        assert_eq!(args[1], Expr::Null);
    }

    #[test]
    fn depth_is_bounded() {
        let src = format!("{}[a]{}", "ToLower(".repeat(100), ")".repeat(100));
        assert!(
            parse(&src)
                .expect_err("too deep")
                .message
                .contains("nested")
        );
    }
}
