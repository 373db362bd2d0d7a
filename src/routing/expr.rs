//! Queue expressions over expert attributes, in the style of TaskRouter's:
//!
//! ```text
//! skills HAS "video" AND languages HAS "es"
//! skills HAS task.skill OR (name == 'Ana' AND NOT languages HAS "en")
//! languages IN ["en", "es"]
//! 1 == 1
//! ```
//!
//! Grammar (keywords in any case; strings in single or double quotes):
//!
//! ```text
//! expr    := and ("OR" and)*
//! and     := not ("AND" not)*
//! not     := "NOT" not | primary
//! primary := "(" expr ")" | operand op operand
//! op      := "HAS" | "IN" | "==" | "!=" | "NOT IN"
//! operand := attribute | "task." name | string | number | "true" | "false" | "[" operand, … "]"
//! ```
//!
//! Semantics: `a HAS b` is true when list `a` contains `b` (or, for a text, equals it);
//! `a IN b` is true when `a` (or any element of list `a`) is in list `b`; `==` and `!=` compare
//! values; text comparisons ignore case. An attribute the expert does not have is null: every
//! comparison with null is false (so `NOT` of it is true). Errors carry the column (from 1).

use std::fmt;

/// A value an operand takes.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    List(Vec<Value>),
}

impl Value {
    fn eq_loose(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Text(a), Value::Text(b)) => a.eq_ignore_ascii_case(b),
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_loose(y))
            }
            _ => false,
        }
    }
}

/// Where operands get their values: the expert's attributes and the task's.
pub trait Attributes {
    /// An attribute of the expert (`skills`, `languages`, `id`, `name`, `capacity`).
    fn expert(&self, name: &str) -> Value;
    /// An attribute of the task (`task.skill`, `task.language`, `task.priority`).
    fn task(&self, name: &str) -> Value;
}

/// A side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Attribute(String),
    Task(String),
    Literal(Value),
    List(Vec<Operand>),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Has,
    In,
    NotIn,
    Eq,
    Ne,
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Operand, Op, Operand),
}

/// A syntax error and its column (1-based, in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ExprError {}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(f64),
    Op(&'static str),
    Open,
    Close,
    LBracket,
    RBracket,
    Comma,
}

fn tokenize(src: &str) -> Result<Vec<(Token, usize)>, ExprError> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let column = |i: usize| {
        src[..chars.get(i).map_or(src.len(), |c| c.0)]
            .chars()
            .count()
            + 1
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        let col = column(i);
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((Token::Open, col));
                i += 1;
            }
            ')' => {
                out.push((Token::Close, col));
                i += 1;
            }
            '[' => {
                out.push((Token::LBracket, col));
                i += 1;
            }
            ']' => {
                out.push((Token::RBracket, col));
                i += 1;
            }
            ',' => {
                out.push((Token::Comma, col));
                i += 1;
            }
            '=' | '!' => {
                let next = chars.get(i + 1).map(|c| c.1);
                match (c, next) {
                    ('=', Some('=')) => out.push((Token::Op("=="), col)),
                    ('!', Some('=')) => out.push((Token::Op("!="), col)),
                    _ => {
                        return Err(ExprError {
                            column: col,
                            message: format!("expected == or != after {c:?}"),
                        });
                    }
                }
                i += 2;
            }
            '"' | '\'' => {
                let quote = c;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(ExprError {
                                column: col,
                                message: "this string is not closed".into(),
                            });
                        }
                        Some((_, ch)) if *ch == quote => break,
                        Some((_, ch)) => text.push(*ch),
                    }
                    i += 1;
                }
                i += 1;
                out.push((Token::Text(text), col));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|(_, ch)| ch.is_ascii_digit() || *ch == '.')
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().map(|c| c.1).collect();
                let number = text.parse().map_err(|_| ExprError {
                    column: col,
                    message: format!("{text:?} is not a number"),
                })?;
                out.push((Token::Number(number), col));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|(_, ch)| ch.is_alphanumeric() || *ch == '_' || *ch == '.')
                {
                    i += 1;
                }
                out.push((
                    Token::Word(chars[start..i].iter().map(|c| c.1).collect()),
                    col,
                ));
            }
            c => {
                return Err(ExprError {
                    column: col,
                    message: format!("unexpected character {c:?}"),
                });
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    end_column: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|t| &t.0)
    }

    fn column(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end_column, |t| t.1)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError {
            column: self.column(),
            message: message.into(),
        })
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.at += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            self.at += 1;
            let right = self.not()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ExprError> {
        if self.keyword("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.expr()?;
            if self.peek() != Some(&Token::Close) {
                return self.error("expected ')'");
            }
            self.at += 1;
            return Ok(inner);
        }
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Token::Op("==")) => Op::Eq,
            Some(Token::Op("!=")) => Op::Ne,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("has") => Op::Has,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("not") => {
                self.at += 1;
                if !self.keyword("in") {
                    return self.error("expected IN after NOT here");
                }
                Op::NotIn
            }
            _ => return self.error("expected HAS, IN, NOT IN, == or !="),
        };
        self.at += 1;
        let right = self.operand()?;
        Ok(Expr::Compare(left, op, right))
    }

    fn operand(&mut self) -> Result<Operand, ExprError> {
        let token = self.peek().cloned();
        let operand = match token {
            Some(Token::Text(t)) => Operand::Literal(Value::Text(t)),
            Some(Token::Number(n)) => Operand::Literal(Value::Number(n)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => {
                Operand::Literal(Value::Bool(true))
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => {
                Operand::Literal(Value::Bool(false))
            }
            Some(Token::Word(w))
                if ["and", "or", "not", "has", "in"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                return self.error(format!("expected a value, found the keyword {w}"));
            }
            Some(Token::Word(w)) => match w.strip_prefix("task.") {
                Some(name) if !name.is_empty() => Operand::Task(name.to_string()),
                _ => Operand::Attribute(w),
            },
            Some(Token::LBracket) => {
                self.at += 1;
                let mut items = Vec::new();
                if self.peek() != Some(&Token::RBracket) {
                    loop {
                        items.push(self.operand()?);
                        match self.peek() {
                            Some(Token::Comma) => self.at += 1,
                            Some(Token::RBracket) => break,
                            _ => return self.error("expected ',' or ']'"),
                        }
                    }
                }
                Operand::List(items)
            }
            _ => {
                return self.error(
                    "expected a value: an attribute, task.NAME, a string, a number or a list",
                );
            }
        };
        self.at += 1;
        Ok(operand)
    }
}

impl Expr {
    /// Parses an expression.
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let tokens = tokenize(src)?;
        if tokens.is_empty() {
            return Err(ExprError {
                column: 1,
                message: "the expression is empty".into(),
            });
        }
        let mut parser = Parser {
            tokens,
            at: 0,
            end_column: src.chars().count() + 1,
        };
        let expr = parser.expr()?;
        if parser.at < parser.tokens.len() {
            return parser.error("unexpected text after the end of the expression");
        }
        Ok(expr)
    }

    /// Evaluates the expression for one expert and task.
    pub fn eval(&self, attrs: &dyn Attributes) -> bool {
        match self {
            Expr::And(a, b) => a.eval(attrs) && b.eval(attrs),
            Expr::Or(a, b) => a.eval(attrs) || b.eval(attrs),
            Expr::Not(a) => !a.eval(attrs),
            Expr::Compare(left, op, right) => {
                let (l, r) = (value(left, attrs), value(right, attrs));
                if l == Value::Null || r == Value::Null {
                    return false;
                }
                match op {
                    Op::Eq => l.eq_loose(&r),
                    Op::Ne => !l.eq_loose(&r),
                    Op::Has => match &l {
                        Value::List(items) => items.iter().any(|i| i.eq_loose(&r)),
                        other => other.eq_loose(&r),
                    },
                    Op::In | Op::NotIn => {
                        let inside = match (&l, &r) {
                            (Value::List(items), Value::List(set)) => {
                                items.iter().any(|i| set.iter().any(|s| s.eq_loose(i)))
                            }
                            (item, Value::List(set)) => set.iter().any(|s| s.eq_loose(item)),
                            (item, other) => item.eq_loose(other),
                        };
                        inside == (*op == Op::In)
                    }
                }
            }
        }
    }

    /// True when the expression mentions `task.…` (so it has to be evaluated per task).
    pub fn uses_task(&self) -> bool {
        fn operand(o: &Operand) -> bool {
            match o {
                Operand::Task(_) => true,
                Operand::List(items) => items.iter().any(operand),
                _ => false,
            }
        }
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.uses_task() || b.uses_task(),
            Expr::Not(a) => a.uses_task(),
            Expr::Compare(l, _, r) => operand(l) || operand(r),
        }
    }
}

fn value(operand: &Operand, attrs: &dyn Attributes) -> Value {
    match operand {
        Operand::Attribute(name) => attrs.expert(name),
        Operand::Task(name) => attrs.task(name),
        Operand::Literal(v) => v.clone(),
        Operand::List(items) => Value::List(items.iter().map(|o| value(o, attrs)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ana;

    impl Attributes for Ana {
        fn expert(&self, name: &str) -> Value {
            let texts =
                |v: &[&str]| Value::List(v.iter().map(|s| Value::Text(s.to_string())).collect());
            match name {
                "skills" => texts(&["video", "messaging"]),
                "languages" => texts(&["en", "es"]),
                "name" => Value::Text("Ana".into()),
                "capacity" => Value::Number(2.0),
                _ => Value::Null,
            }
        }

        fn task(&self, name: &str) -> Value {
            match name {
                "skill" => Value::Text("video".into()),
                "language" => Value::Text("es".into()),
                _ => Value::Null,
            }
        }
    }

    #[test]
    fn evaluation_table() {
        let cases = [
            ("skills HAS \"video\"", true),
            ("skills has 'VIDEO'", true),
            ("skills HAS \"voice\"", false),
            ("skills HAS \"video\" AND languages HAS \"es\"", true),
            ("skills HAS \"voice\" OR languages HAS \"es\"", true),
            ("NOT skills HAS \"voice\"", true),
            (
                "skills HAS task.skill AND languages HAS task.language",
                true,
            ),
            ("languages IN [\"fr\", \"es\"]", true),
            ("languages NOT IN [\"fr\", \"de\"]", true),
            ("name == 'Ana'", true),
            ("name != 'Ana'", false),
            ("capacity == 2", true),
            ("1 == 1", true),
            (
                "(skills HAS 'voice' OR skills HAS 'messaging') AND NOT name == 'Bo'",
                true,
            ),
            ("team == 'red'", false),
            ("NOT team == 'red'", true),
            ("skills HAS task.missing", false),
            ("true == true", true),
        ];
        for (src, expected) in cases {
            let expr = Expr::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(expr.eval(&Ana), expected, "{src}");
        }
        assert!(Expr::parse("skills HAS task.skill").unwrap().uses_task());
        assert!(!Expr::parse("skills HAS 'x'").unwrap().uses_task());
    }

    #[test]
    fn errors_carry_their_column() {
        let cases = [
            ("", 1, "empty"),
            ("skills HAS", 11, "expected a value"),
            ("skills HAZ 'x'", 8, "expected HAS, IN"),
            ("skills HAS 'x' AND", 19, "expected a value"),
            ("(skills HAS 'x'", 16, "expected ')'"),
            ("skills HAS 'x", 12, "not closed"),
            ("skills = 'x'", 8, "expected == or !="),
            ("skills HAS 'x' 'y'", 16, "unexpected text"),
            ("languages IN ['a' 'b']", 19, "expected ',' or ']'"),
            ("skills HAS $", 12, "unexpected character"),
            ("AND skills HAS 'x'", 1, "keyword AND"),
        ];
        for (src, column, message) in cases {
            let err = Expr::parse(src).unwrap_err();
            assert_eq!(err.column, column, "{src}: {err}");
            assert!(err.message.contains(message), "{src}: {err}");
        }
    }
}
