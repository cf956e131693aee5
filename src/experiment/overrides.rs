//! `--set FIELD=VALUE`: overrides of an experiment's fields, the value in RON syntax.
//!
//! The experiment is edited as a serde tree (`serde_json::Value`, enums externally tagged:
//! `"Cpu"`, `{"Cuda": 0}`, `{"MetaLearner": {…}}`) and read back with its own types, so every
//! field is checked as in a file. RON values are read into that tree by the small parser below
//! rather than through `ron::Value`, which has no enums: `ron::Value` reads `Cuda(0)` as the
//! sequence `[0]` and a bare `Cpu` as `()`, losing the variant. Where RON cannot tell a variant
//! from a struct name (`Name(a: 1)`), the field's current value decides.

use super::Experiment;
use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// Applies `--set FIELD=VALUE` overrides to RON text; returns the experiment as RON text.
pub fn apply_overrides(text: &str, sets: &[String]) -> Result<String> {
    if sets.is_empty() {
        return Ok(text.to_string());
    }
    let exp = Experiment::parse(text, Path::new("experiment"))?;
    let mut tree: Value = serde_json::to_value(&exp)?;
    for s in sets {
        let Some((field, value)) = s.split_once('=') else {
            bail!("--set {s}: expected FIELD=VALUE, e.g. --set seeds=[0]");
        };
        let mut node = &mut tree;
        let parts: Vec<&str> = field.trim().split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let Some(obj) = node.as_object_mut() else {
                bail!(
                    "--set {s}: '{}' has no field '{part}'",
                    parts[..i].join(".")
                );
            };
            let known = obj.keys().cloned().collect::<Vec<_>>().join(", ");
            match obj.get_mut(*part) {
                Some(next) => node = next,
                None => bail!("--set {s}: no field '{part}' here; fields are: {known}"),
            }
        }
        let ast = Parser::new(value)
            .value_to_end()
            .map_err(|e| anyhow!("--set {s}: {} is not a RON value ({e})", value.trim()))?;
        *node = to_tree(&ast, Some(node)).map_err(|e| anyhow!("--set {s}: {e}"))?;
    }
    let exp: Experiment = serde_json::from_value(tree)
        .map_err(|e| anyhow!("--set: the result is not a valid experiment ({e})"))?;
    Ok(exp.to_ron())
}

/// A RON value as written.
#[derive(Debug, Clone, PartialEq)]
enum Ron {
    /// A bare name: a unit variant, `None`, or a unit struct.
    Name(String),
    /// `Name(…)`: a variant with data (or a named struct / tuple).
    Named(String, Body),
    /// `(…)` without a name: a struct or a tuple.
    Parens(Body),
    List(Vec<Ron>),
    Map(Vec<(Ron, Ron)>),
    Str(String),
    Int(i128),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    Tuple(Vec<Ron>),
    Struct(Vec<(String, Ron)>),
}

/// The tree value of `v`; `like` is the value it replaces, which tells a named struct from a
/// variant and is passed down to nested values.
fn to_tree(v: &Ron, like: Option<&Value>) -> Result<Value, String> {
    Ok(match v {
        Ron::Name(n) if n == "None" => Value::Null,
        Ron::Name(n) => Value::String(n.clone()),
        Ron::Named(n, Body::Tuple(items)) if n == "Some" && items.len() == 1 => {
            to_tree(&items[0], like)?
        }
        Ron::Named(n, body) => {
            // a struct field (an object whose keys are not one variant's name) keeps its
            // fields: the name is RON's optional struct name
            let tagged = like
                .and_then(Value::as_object)
                .filter(|o| o.len() == 1)
                .and_then(|o| o.keys().next())
                .is_some_and(|k| k.starts_with(|c: char| c.is_ascii_uppercase()));
            let is_struct = like.is_some_and(Value::is_object) && !tagged;
            if is_struct {
                body_tree(body, like)?
            } else {
                let inner = like.and_then(|l| l.get(n));
                let data = match body {
                    // `Name()`: a unit variant where the field holds one now (`Auto`), else a
                    // variant whose struct takes its defaults (`IsolationForest()`)
                    Body::Tuple(items) if items.is_empty() => {
                        if like.is_some_and(Value::is_string) {
                            return Ok(Value::String(n.clone()));
                        }
                        Value::Object(Map::new())
                    }
                    Body::Tuple(items) if items.len() == 1 => to_tree(&items[0], inner)?,
                    _ => body_tree(body, inner)?,
                };
                let mut m = Map::new();
                m.insert(n.clone(), data);
                Value::Object(m)
            }
        }
        Ron::Parens(body) => body_tree(body, like)?,
        Ron::List(items) => {
            let first = like.and_then(Value::as_array).and_then(|a| a.first());
            Value::Array(
                items
                    .iter()
                    .map(|x| to_tree(x, first))
                    .collect::<Result<_, _>>()?,
            )
        }
        Ron::Map(entries) => {
            let mut m = Map::new();
            for (k, x) in entries {
                let key = match k {
                    Ron::Str(s) | Ron::Name(s) => s.clone(),
                    Ron::Int(i) => i.to_string(),
                    other => return Err(format!("a map key must be a string, not {other:?}")),
                };
                let inner = like.and_then(|l| l.get(&key));
                m.insert(key, to_tree(x, inner)?);
            }
            Value::Object(m)
        }
        Ron::Str(s) => Value::String(s.clone()),
        Ron::Int(i) => {
            if let Ok(u) = u64::try_from(*i) {
                Value::from(u)
            } else if let Ok(s) = i64::try_from(*i) {
                Value::from(s)
            } else {
                return Err(format!("{i} is out of range"));
            }
        }
        Ron::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("{f} cannot be set (only finite numbers can)"))?,
        Ron::Bool(b) => Value::Bool(*b),
    })
}

fn body_tree(body: &Body, like: Option<&Value>) -> Result<Value, String> {
    Ok(match body {
        Body::Tuple(items) => {
            let like = like.and_then(Value::as_array);
            Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| to_tree(x, like.and_then(|a| a.get(i))))
                    .collect::<Result<_, _>>()?,
            )
        }
        Body::Struct(fields) => {
            let mut m = Map::new();
            for (k, x) in fields {
                m.insert(k.clone(), to_tree(x, like.and_then(|l| l.get(k)))?);
            }
            Value::Object(m)
        }
    })
}

/// How deep values may nest (as ron's own limit): a recursive reader must stop before the
/// stack does, and experiment values nest a few levels.
const MAX_DEPTH: usize = 128;

/// Recursive-descent reader of one RON value (no extensions beyond what experiment files use).
struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    /// Values being read around the current one.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            s: text.as_bytes(),
            text,
            i: 0,
            depth: 0,
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        let col = self.text[..self.i.min(self.text.len())].chars().count() + 1;
        Err(format!("{what} at column {col}"))
    }

    fn skip_ws(&mut self) {
        loop {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
            if self.s[self.i..].starts_with(b"//") {
                while self.i < self.s.len() && self.s[self.i] != b'\n' {
                    self.i += 1;
                }
            } else {
                return;
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Reads `c` or fails.
    fn require(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(&format!("expected '{}'", c as char))
        }
    }

    fn value_to_end(mut self) -> Result<Ron, String> {
        let v = self.value()?;
        if self.peek().is_some() {
            return self.err("unexpected text after the value");
        }
        Ok(v)
    }

    fn ident(&mut self) -> Option<String> {
        self.skip_ws();
        let start = self.i;
        if !self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        {
            return None;
        }
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.i += 1;
        }
        Some(self.text[start..self.i].to_string())
    }

    fn value(&mut self) -> Result<Ron, String> {
        if self.depth >= MAX_DEPTH {
            return self.err(&format!(
                "values nested more than {MAX_DEPTH} deep (close the brackets)"
            ));
        }
        self.depth += 1;
        let v = self.value_here();
        self.depth -= 1;
        v
    }

    fn value_here(&mut self) -> Result<Ron, String> {
        match self.peek() {
            None => self.err("expected a value"),
            Some(b'[') => {
                self.i += 1;
                self.items(b']', Self::value).map(Ron::List)
            }
            Some(b'{') => {
                self.i += 1;
                self.items(b'}', |p| {
                    let k = p.value()?;
                    p.require(b':')?;
                    Ok((k, p.value()?))
                })
                .map(Ron::Map)
            }
            Some(b'(') => Ok(Ron::Parens(self.body()?)),
            Some(b'"') => self.string().map(Ron::Str),
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => self.number(),
            Some(_) => {
                let start = self.i;
                let Some(name) = self.ident() else {
                    return self.err("expected a value");
                };
                match name.as_str() {
                    "true" => return Ok(Ron::Bool(true)),
                    "false" => return Ok(Ron::Bool(false)),
                    "inf" | "NaN" => {
                        self.i = start;
                        return self.number();
                    }
                    _ => {}
                }
                if self.peek() == Some(b'(') {
                    Ok(Ron::Named(name, self.body()?))
                } else {
                    Ok(Ron::Name(name))
                }
            }
        }
    }

    /// `( … )`: named fields (`a: 1, b: 2`) or tuple items.
    fn body(&mut self) -> Result<Body, String> {
        self.require(b'(')?;
        // named fields start with `ident :` (not `ident(` or a lone ident)
        let save = self.i;
        let is_struct = self.ident().is_some() && self.peek() == Some(b':');
        self.i = save;
        if is_struct {
            self.items(b')', |p| {
                let Some(k) = p.ident() else {
                    return p.err("expected a field name");
                };
                p.require(b':')?;
                Ok((k, p.value()?))
            })
            .map(Body::Struct)
        } else {
            self.items(b')', Self::value).map(Body::Tuple)
        }
    }

    /// Comma-separated `item`s up to `close` (a trailing comma allowed), the opening bracket
    /// already read.
    fn items<T>(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let mut out = Vec::new();
        while !self.eat(close) {
            out.push(item(self)?);
            if !self.eat(b',') {
                self.require(close)?;
                break;
            }
        }
        Ok(out)
    }

    fn string(&mut self) -> Result<String, String> {
        self.require(b'"')?;
        let mut out = String::new();
        let mut chars = self.text[self.i..].char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => {
                    self.i += k + 1;
                    return Ok(out);
                }
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        '\\' | '"' | '\'' => e,
                        _ => {
                            self.i += k;
                            return self.err(&format!("unknown escape '\\{e}'"));
                        }
                    });
                }
                _ => out.push(c),
            }
        }
        self.i = self.s.len();
        self.err("unterminated string")
    }

    fn number(&mut self) -> Result<Ron, String> {
        self.skip_ws();
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'_'))
        {
            self.i += 1;
        }
        let raw: String = self.text[start..self.i]
            .chars()
            .filter(|&c| c != '_')
            .collect();
        if let Ok(i) = raw.parse::<i128>() {
            return Ok(Ron::Int(i));
        }
        match raw.parse::<f64>() {
            Ok(f) => Ok(Ron::Float(f)),
            Err(_) => {
                self.i = start;
                self.err(&format!("'{raw}' is not a number"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree(text: &str, like: Value) -> Value {
        let ast = Parser::new(text).value_to_end().unwrap();
        to_tree(&ast, Some(&like)).unwrap()
    }

    #[test]
    fn variants_keep_their_names() {
        assert_eq!(tree("Cuda(0)", json!("Cpu")), json!({"Cuda": 0}));
        assert_eq!(tree("Cpu", json!({"Cuda": 0})), json!("Cpu"));
        assert_eq!(
            tree(
                r#"Fixed(["Burst", "Drift"])"#,
                json!({"RotateEach": {"min_rows": 50}})
            ),
            json!({"Fixed": ["Burst", "Drift"]})
        );
        // a variant wrapping a struct, nested unit variants inside
        assert_eq!(
            tree(
                "MetaLearner(inner_mode: supervised_inner_families, epsilon: 1e-3)",
                json!({"MetaLearner": {"epsilon": 0.002}})
            ),
            json!({"MetaLearner": {"inner_mode": "supervised_inner_families", "epsilon": 0.001}})
        );
        assert_eq!(
            tree("[Odin(temperature: 1000.0, epsilon: 0.0014)]", json!([])),
            json!([{"Odin": {"temperature": 1000.0, "epsilon": 0.0014}}])
        );
        // `Name()`: a method with its defaults, a unit variant where the field holds one
        assert_eq!(
            tree(
                "IsolationForest()",
                json!({"MetaLearner": {"epsilon": 0.002}})
            ),
            json!({"IsolationForest": {}})
        );
        assert_eq!(
            tree("[Ecod(), Odin()]", json!([])),
            json!([{"Ecod": {}}, {"Odin": {}}])
        );
        assert_eq!(tree("Auto()", json!("Cpu")), json!("Auto"));
    }

    #[test]
    fn struct_names_options_maps_and_numbers() {
        // a struct's optional name is dropped where the field holds a struct
        assert_eq!(
            tree("EpisodeSpec(count: 2)", json!({"count": 5, "shots": 50})),
            json!({"count": 2})
        );
        assert_eq!(tree("(count: 2,)", json!({})), json!({"count": 2}));
        assert_eq!(tree("Some(3)", json!(null)), json!(3));
        assert_eq!(tree("None", json!(3)), json!(null));
        assert_eq!(
            tree(r#"{"Fixed": ["a"]}"#, json!(null)),
            json!({"Fixed": ["a"]})
        );
        assert_eq!(tree("[0, 1_000, -2]", json!([])), json!([0, 1000, -2]));
        assert_eq!(tree("2.5e-3", json!(0.1)), json!(0.0025));
        assert_eq!(tree(r#""a \"b\"\n""#, json!("")), json!("a \"b\"\n"));
        assert_eq!(tree("(1, true)", json!([])), json!([1, true]));
    }

    #[test]
    fn bad_values_say_where() {
        let e = |t: &str| Parser::new(t).value_to_end().unwrap_err();
        assert!(e("Cuda(0").contains("expected ')'"), "{}", e("Cuda(0"));
        assert!(e("[1, 2").contains("column"), "{}", e("[1, 2"));
        assert!(e("\"abc").contains("unterminated"));
        assert!(e("1 2").contains("after the value"));
        assert!(e("1.2.3").contains("not a number"));
        let nan = Parser::new("NaN").value_to_end().unwrap();
        assert!(to_tree(&nan, None).unwrap_err().contains("finite"));
    }
}
