//! Recursive-descent parser for filters and PATCH paths.
//!
//! ```text
//! FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
//! logExp    = FILTER SP ("and" / "or") SP FILTER      ; "and" binds tighter, left-assoc
//! attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
//! valuePath = attrPath "[" valFilter "]"
//! ```
//! Extensions over the RFC grammar, each for a real client: `not` without parentheses,
//! bare (unquoted) string literals (legacy Entra examples and Microsoft's Postman suite),
//! case-insensitive `true`/`false`/`null`, and `attr[filter].sub op value` which reads as
//! `attr[filter and sub op value]`.

use super::lexer::{Lexer, Token};
use super::{CompValue, CompareOp, FilterExpr, FilterLimits, SyntaxError};
use crate::path::{AttrPath, is_attr_name};

pub struct Parser<'a> {
    lexer: Lexer<'a>,
    tok: Token,
    pos: usize,
    limits: FilterLimits,
    depth: usize,
    terms: usize,
    in_brackets: bool,
}

type PResult<T> = Result<T, SyntaxError>;

impl<'a> Parser<'a> {
    pub fn new(src: &'a str, limits: FilterLimits) -> PResult<Self> {
        if src.len() > limits.max_len {
            return Err(SyntaxError {
                position: limits.max_len,
                message: format!("longer than the limit of {} bytes", limits.max_len),
            });
        }
        let mut lexer = Lexer::new(src);
        let (tok, pos) = lexer.next_token()?;
        if tok == Token::Eof {
            return Err(SyntaxError {
                position: 0,
                message: "empty expression".into(),
            });
        }
        Ok(Self {
            lexer,
            tok,
            pos,
            limits,
            depth: 0,
            terms: 0,
            in_brackets: false,
        })
    }

    fn err<T>(&self, message: impl Into<String>) -> PResult<T> {
        Err(SyntaxError {
            position: self.pos,
            message: message.into(),
        })
    }

    fn advance(&mut self) -> PResult<()> {
        let (tok, pos) = self.lexer.next_token()?;
        self.tok = tok;
        self.pos = pos;
        Ok(())
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(&self.tok, Token::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, t: Token, what: &str) -> PResult<()> {
        if self.tok == t {
            self.advance()
        } else {
            self.err(format!("expected {what}, found {}", describe(&self.tok)))
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return self.err(format!(
                "nested deeper than the limit of {}",
                self.limits.max_depth
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Parses a whole filter; trailing input is an error.
    pub fn parse_filter(mut self) -> PResult<FilterExpr> {
        let e = self.or_expr()?;
        if self.tok != Token::Eof {
            return self.err(format!(
                "expected 'and', 'or' or the end, found {}",
                describe(&self.tok)
            ));
        }
        Ok(e)
    }

    /// Parses a PATCH path: `attrPath` or `attrPath[valFilter][.subAttr]`; the parts of a
    /// [`super::PatchPath`].
    pub fn parse_patch_path(mut self) -> PResult<(AttrPath, Option<FilterExpr>)> {
        let mut attr = self.attr_path()?;
        let mut filter = None;
        if self.tok == Token::LBracket {
            if attr.sub.is_some() {
                return self.err("a value filter must follow a top-level attribute");
            }
            filter = Some(self.bracket_filter()?);
            if let Some(sub) = self.dotted_sub()? {
                attr.sub = Some(sub);
            }
        }
        if self.tok != Token::Eof {
            return self.err(format!("unexpected {}", describe(&self.tok)));
        }
        Ok((attr, filter))
    }

    fn or_expr(&mut self) -> PResult<FilterExpr> {
        let mut left = self.and_expr()?;
        while self.is_keyword("or") {
            self.advance()?;
            let right = self.and_expr()?;
            left = FilterExpr::or(left, right);
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> PResult<FilterExpr> {
        let mut left = self.unary()?;
        while self.is_keyword("and") {
            self.advance()?;
            let right = self.unary()?;
            left = FilterExpr::and(left, right);
        }
        Ok(left)
    }

    fn unary(&mut self) -> PResult<FilterExpr> {
        if self.is_keyword("not") {
            self.advance()?;
            self.enter()?;
            let inner = if self.tok == Token::LParen {
                self.advance()?;
                let e = self.or_expr()?;
                self.expect(Token::RParen, "')'")?;
                e
            } else {
                self.unary()?
            };
            self.leave();
            return Ok(FilterExpr::negate(inner));
        }
        if self.tok == Token::LParen {
            self.advance()?;
            self.enter()?;
            let e = self.or_expr()?;
            self.expect(Token::RParen, "')'")?;
            self.leave();
            return Ok(e);
        }
        self.attr_expr()
    }

    fn attr_path(&mut self) -> PResult<AttrPath> {
        let Token::Word(w) = &self.tok else {
            return self.err(format!(
                "expected an attribute name, found {}",
                describe(&self.tok)
            ));
        };
        let Some(path) = AttrPath::parse(w) else {
            return self.err(format!(
                "'{}' is not a valid attribute path",
                crate::error::excerpt(w)
            ));
        };
        self.advance()?;
        Ok(path)
    }

    /// `"[" valFilter "]"`, the current token being `[`.
    fn bracket_filter(&mut self) -> PResult<FilterExpr> {
        if self.in_brackets {
            return self.err("value filters cannot be nested");
        }
        self.advance()?;
        self.enter()?;
        self.in_brackets = true;
        let inner = self.or_expr()?;
        self.in_brackets = false;
        self.expect(Token::RBracket, "']'")?;
        self.leave();
        Ok(inner)
    }

    /// An optional `.subAttr` directly after `]`.
    fn dotted_sub(&mut self) -> PResult<Option<String>> {
        let Token::Word(w) = &self.tok else {
            return Ok(None);
        };
        let Some(sub) = w.strip_prefix('.') else {
            return Ok(None);
        };
        if !is_attr_name(sub) {
            return self.err(format!(
                "'{}' is not a valid sub-attribute name",
                crate::error::excerpt(sub)
            ));
        }
        let sub = sub.to_string();
        self.advance()?;
        Ok(Some(sub))
    }

    fn count_term(&mut self) -> PResult<()> {
        self.terms += 1;
        if self.terms > self.limits.max_terms {
            return self.err(format!(
                "more than the limit of {} expressions",
                self.limits.max_terms
            ));
        }
        Ok(())
    }

    fn attr_expr(&mut self) -> PResult<FilterExpr> {
        let path = self.attr_path()?;
        if self.tok == Token::LBracket {
            if path.sub.is_some() {
                return self.err("a value filter must follow a top-level attribute");
            }
            let mut inner = self.bracket_filter()?;
            if let Some(sub) = self.dotted_sub()? {
                let tail = self.operator_tail(AttrPath::new(&sub))?;
                inner = FilterExpr::and(inner, tail);
            }
            return Ok(FilterExpr::ValuePath {
                attr: path,
                filter: Box::new(inner),
            });
        }
        self.operator_tail(path)
    }

    /// `SP "pr"` or `SP compareOp SP compValue` after an attribute path.
    fn operator_tail(&mut self, path: AttrPath) -> PResult<FilterExpr> {
        let Token::Word(w) = &self.tok else {
            return self.err(format!(
                "expected an operator after '{path}', found {}",
                describe(&self.tok)
            ));
        };
        if w.eq_ignore_ascii_case("pr") {
            self.advance()?;
            self.count_term()?;
            return Ok(FilterExpr::Present(path));
        }
        let Some(op) = CompareOp::from_keyword(w) else {
            return self.err(format!(
                "'{}' is not a comparison operator",
                crate::error::excerpt(w)
            ));
        };
        self.advance()?;
        let value = match &self.tok {
            Token::Str(s) => CompValue::Str(s.clone()),
            Token::Word(w) => literal(w),
            other => {
                return self.err(format!(
                    "expected a value after '{}', found {}",
                    op.as_str(),
                    describe(other)
                ));
            }
        };
        self.advance()?;
        self.count_term()?;
        Ok(FilterExpr::Compare { path, op, value })
    }
}

fn literal(w: &str) -> CompValue {
    if w.eq_ignore_ascii_case("true") {
        CompValue::Bool(true)
    } else if w.eq_ignore_ascii_case("false") {
        CompValue::Bool(false)
    } else if w.eq_ignore_ascii_case("null") {
        CompValue::Null
    } else if let Ok(n) = serde_json::from_str::<serde_json::Number>(w) {
        CompValue::Number(n)
    } else {
        CompValue::Str(w.to_string())
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::LParen => "'('".into(),
        Token::RParen => "')'".into(),
        Token::LBracket => "'['".into(),
        Token::RBracket => "']'".into(),
        Token::Word(w) => format!("'{}'", crate::error::excerpt(w)),
        Token::Str(s) => format!("string \"{}\"", crate::error::excerpt(s)),
        Token::Eof => "the end of the expression".into(),
    }
}
