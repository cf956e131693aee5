//! The detector registry: every method heldout runs, with its parameters (defaults, ranges and
//! one line of help each), what it is (paper, the labels it needs) and how it is built.
//!
//! A method is one file in `detect/` whose parameter struct implements [`MethodSpec`], plus one
//! line in the `registry!` list of `detect/mod.rs` (which also declares the module). The
//! experiment file, `heldout methods`, the runner and the workbench's forms all read this list;
//! nothing else names a method.

use super::{DetectError, Detector};
use candle_core::Device;
use serde::{de::DeserializeOwned, Serialize};

/// The labelled rows a method trains on (besides the normal training rows every method gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Labels {
    /// Normal training rows only (one-class).
    NormalsOnly,
    /// Normal rows and the few-shot anomalies of the seen families.
    FewShot,
    /// Normal rows and every training row of the seen families.
    AllSeen,
}

impl Labels {
    /// For tables and help text.
    pub fn describe(self) -> &'static str {
        match self {
            Labels::NormalsOnly => "normals only",
            Labels::FewShot => "normals + few-shot anomalies of the seen families",
            Labels::AllSeen => "normals + all training rows of the seen families",
        }
    }
}

/// The type and allowed values of one parameter (what the workbench draws a widget for).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ParamKind {
    /// An integer in `[min, max]`.
    Int {
        min: i64,
        max: u64,
    },
    /// A finite number in `[min, max]`.
    Float {
        min: f64,
        max: f64,
    },
    Bool,
    /// One of these names (as written in experiment files).
    Choice {
        options: &'static [&'static str],
    },
    /// A list of 1 to `max_len` integers, each in `[min, max]` (layer widths).
    IntList {
        min: u64,
        max: u64,
        max_len: usize,
    },
    /// A list of 1 to `max_len` finite numbers, each in `[min, max]` (a sweep's grid).
    FloatList {
        min: f64,
        max: f64,
        max_len: usize,
    },
}

/// One parameter of a method: its name in experiment files, kind, help and form group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ParamInfo {
    pub name: &'static str,
    pub kind: ParamKind,
    /// One line: what it does and the source of its default.
    pub help: &'static str,
    /// The form section it belongs to (e.g. "Architecture").
    pub group: &'static str,
}

impl ParamInfo {
    pub const fn int(name: &'static str, min: i64, max: u64, help: &'static str) -> Self {
        ParamInfo {
            name,
            kind: ParamKind::Int { min, max },
            help,
            group: "",
        }
    }
    pub const fn float(name: &'static str, min: f64, max: f64, help: &'static str) -> Self {
        ParamInfo {
            name,
            kind: ParamKind::Float { min, max },
            help,
            group: "",
        }
    }
    pub const fn boolean(name: &'static str, help: &'static str) -> Self {
        ParamInfo {
            name,
            kind: ParamKind::Bool,
            help,
            group: "",
        }
    }
    pub const fn choice(
        name: &'static str,
        options: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        ParamInfo {
            name,
            kind: ParamKind::Choice { options },
            help,
            group: "",
        }
    }
    pub const fn int_list(
        name: &'static str,
        min: u64,
        max: u64,
        max_len: usize,
        help: &'static str,
    ) -> Self {
        ParamInfo {
            name,
            kind: ParamKind::IntList { min, max, max_len },
            help,
            group: "",
        }
    }
    pub const fn float_list(
        name: &'static str,
        min: f64,
        max: f64,
        max_len: usize,
        help: &'static str,
    ) -> Self {
        ParamInfo {
            name,
            kind: ParamKind::FloatList { min, max, max_len },
            help,
            group: "",
        }
    }
    /// The same parameter in form section `group`.
    pub const fn in_group(mut self, group: &'static str) -> Self {
        self.group = group;
        self
    }
}

/// What a method is, for `heldout methods`, the workbench and tables.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MethodInfo {
    /// A one-line title.
    pub title: &'static str,
    /// The paper (and where heldout follows it: spec section, reference file).
    pub paper: &'static str,
    pub labels: Labels,
    /// What it does, in a sentence or two.
    pub summary: &'static str,
}

/// A parameter value that cannot be used: the parameter's name and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {msg}")]
pub struct ParamError {
    pub param: String,
    pub msg: String,
}

impl ParamError {
    pub fn new(param: impl Into<String>, msg: impl Into<String>) -> Self {
        ParamError {
            param: param.into(),
            msg: msg.into(),
        }
    }
}

impl From<(&'static str, String)> for ParamError {
    /// From a method's own `validate()` result: (parameter, message).
    fn from((param, msg): (&'static str, String)) -> Self {
        ParamError::new(param, msg)
    }
}

/// What building a detector may depend on besides its own parameters.
pub struct BuildCtx<'a> {
    /// Feature columns.
    pub d: usize,
    pub seed: u64,
    pub device: &'a Device,
    /// The experiment's main method, for baselines defined relative to it (ODIN takes the
    /// meta-learner's encoder and head sizes, as in the reference).
    pub main: &'a super::Method,
}

/// A method's parameter struct: defaults (`Default`), serialisation (the experiment file), its
/// description, its parameters' ranges and help, and how the detector is built.
pub trait MethodSpec:
    Sized + Clone + std::fmt::Debug + PartialEq + Default + Serialize + DeserializeOwned
{
    fn info() -> MethodInfo;
    /// Every field, in declaration order, with its range and help.
    fn params() -> &'static [ParamInfo];
    /// The labels this setting trains on (a method whose parameters choose them overrides it).
    fn labels(&self) -> Labels {
        Self::info().labels
    }
    /// Rules beyond the ranges of [`MethodSpec::params`] (open intervals, combinations).
    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
    /// The name of a unit in tables and folders (may include parameter values).
    fn name(&self) -> String;
    fn build(&self, ctx: &BuildCtx) -> Result<Box<dyn Detector>, DetectError>;
    /// What one unit costs on rows of sizes `s` (`main`: the experiment's main method, for
    /// baselines sized after it): parameters, memory, and the work of each phase.
    fn cost(&self, s: &super::cost::UnitSizes, main: &super::Method) -> super::cost::Cost;
}

/// Checks every parameter of `p` against its declared range, then the method's own rules.
pub fn check_params<P: MethodSpec>(p: &P) -> Result<(), ParamError> {
    let v = serde_json::to_value(p).map_err(|e| ParamError::new("(all)", e.to_string()))?;
    for info in P::params() {
        let Some(x) = v.get(info.name) else {
            return Err(ParamError::new(info.name, "missing (registry out of date)"));
        };
        check_value(info, x)?;
    }
    p.validate()
}

/// Checks one JSON value against a parameter's kind.
pub fn check_value(info: &ParamInfo, x: &serde_json::Value) -> Result<(), ParamError> {
    let bad = |msg: String| Err(ParamError::new(info.name, msg));
    match info.kind {
        ParamKind::Int { min, max } => {
            let ok = match (x.as_i64(), x.as_u64()) {
                (_, Some(u)) => u <= max && (min <= 0 || u >= min as u64),
                (Some(i), None) => i >= min,
                _ => return bad(format!("{x} is not an integer")),
            };
            if !ok {
                return bad(format!("{x} — allowed: {min} to {max}"));
            }
        }
        ParamKind::Float { min, max } => match x.as_f64() {
            Some(f) if f.is_finite() && f >= min && f <= max => {}
            // serde_json writes NaN and ±inf as null
            _ => {
                let shown = if x.is_null() {
                    "not a finite number".to_string()
                } else {
                    x.to_string()
                };
                return bad(format!("{shown} — allowed: {min} to {max}"));
            }
        },
        ParamKind::Bool => {
            if !x.is_boolean() {
                return bad(format!("{x} is not true or false"));
            }
        }
        ParamKind::Choice { options } => match x.as_str() {
            Some(s) if options.contains(&s) => {}
            _ => return bad(format!("{x} — allowed: {}", options.join(", "))),
        },
        ParamKind::IntList { min, max, max_len } => {
            let ok = x.as_array().is_some_and(|a| {
                (1..=max_len).contains(&a.len())
                    && a.iter()
                        .all(|v| v.as_u64().is_some_and(|u| (min..=max).contains(&u)))
            });
            if !ok {
                return bad(format!(
                    "{x} — allowed: a list of 1 to {max_len} integers, each {min} to {max}"
                ));
            }
        }
        ParamKind::FloatList { min, max, max_len } => {
            let ok = x.as_array().is_some_and(|a| {
                (1..=max_len).contains(&a.len())
                    && a.iter().all(|v| {
                        v.as_f64()
                            .is_some_and(|f| f.is_finite() && f >= min && f <= max)
                    })
            });
            if !ok {
                return bad(format!(
                    "{x} — allowed: a list of 1 to {max_len} numbers, each {min} to {max}"
                ));
            }
        }
    }
    Ok(())
}

/// Declares the detector modules and the [`Method`] enum of the experiment file: one line per
/// method, `module => Variant(ParamsType)`, where `module` holds `ParamsType: MethodSpec`.
macro_rules! registry {
    ($($module:ident => $variant:ident($params:ident)),* $(,)?) => {
        $(pub mod $module;)*
        $(pub use $module::$params;)*

        /// A detector and its parameters, as written in experiment files, e.g.
        /// `IsolationForest(n_estimators: 200)`; missing parameters take their defaults.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        pub enum Method {
            $($variant($params),)*
        }

        impl Method {
            /// The names of every method in experiment files, in registry order.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($variant)),*];

            /// Every method with its default parameters, in registry order.
            pub fn all() -> Vec<Method> {
                vec![$(Method::$variant(<$params>::default())),*]
            }

            /// The method named `key` (as in experiment files) with default parameters.
            pub fn from_key(key: &str) -> Option<Method> {
                Self::all().into_iter().find(|m| m.key() == key)
            }

            /// Its name in experiment files.
            pub fn key(&self) -> &'static str {
                match self {
                    $(Method::$variant(_) => stringify!($variant),)*
                }
            }

            pub fn info(&self) -> $crate::detect::registry::MethodInfo {
                match self {
                    $(Method::$variant(_) => <$params as $crate::detect::MethodSpec>::info(),)*
                }
            }

            /// The labels it trains on with these parameters.
            pub fn labels(&self) -> $crate::detect::registry::Labels {
                match self {
                    $(Method::$variant(p) => $crate::detect::MethodSpec::labels(p),)*
                }
            }

            pub fn params(&self) -> &'static [$crate::detect::registry::ParamInfo] {
                match self {
                    $(Method::$variant(_) => <$params as $crate::detect::MethodSpec>::params(),)*
                }
            }

            /// The name of its units in tables and folders.
            pub fn name(&self) -> String {
                match self {
                    $(Method::$variant(p) => $crate::detect::MethodSpec::name(p),)*
                }
            }

            /// Every parameter in range, and the method's own rules.
            pub fn check(&self) -> Result<(), $crate::detect::ParamError> {
                match self {
                    $(Method::$variant(p) => $crate::detect::registry::check_params(p),)*
                }
            }

            /// Whether the parameters are the method's defaults.
            pub fn is_default(&self) -> bool {
                match self {
                    $(Method::$variant(p) => *p == <$params>::default(),)*
                }
            }

            /// What one unit of it costs (see [`MethodSpec::cost`]).
            pub fn cost(
                &self,
                s: &$crate::detect::cost::UnitSizes,
                main: &Method,
            ) -> $crate::detect::cost::Cost {
                match self {
                    $(Method::$variant(p) => $crate::detect::MethodSpec::cost(p, s, main),)*
                }
            }

            pub fn build(
                &self,
                ctx: &$crate::detect::BuildCtx,
            ) -> Result<Box<dyn $crate::detect::Detector>, $crate::detect::DetectError> {
                match self {
                    $(Method::$variant(p) => $crate::detect::MethodSpec::build(p, ctx),)*
                }
            }
        }
    };
}
pub(crate) use registry;

#[cfg(test)]
mod tests {
    use super::super::Method;
    use super::*;

    #[test]
    fn every_method_describes_every_field_and_its_defaults_pass() {
        for m in Method::all() {
            let v = serde_json::to_value(&m).unwrap();
            let fields = v[m.key()].as_object().unwrap();
            let described: Vec<&str> = m.params().iter().map(|p| p.name).collect();
            let mut keys: Vec<&str> = fields.keys().map(|k| k.as_str()).collect();
            keys.sort();
            let mut d = described.clone();
            d.sort();
            assert_eq!(keys, d, "{}: fields vs registry", m.key());
            assert!(m.check().is_ok(), "{}: {:?}", m.key(), m.check());
            for p in m.params() {
                assert!(!p.help.is_empty(), "{}.{} has no help", m.key(), p.name);
            }
            assert!(m.is_default());
            assert_eq!(Method::from_key(m.key()).as_ref(), Some(&m));
        }
    }

    #[test]
    fn out_of_range_values_name_the_parameter() {
        let i = ParamInfo::int("n_estimators", 1, 100_000, "trees");
        let e = check_value(&i, &serde_json::json!(0)).unwrap_err();
        assert_eq!(e.param, "n_estimators");
        assert!(e.msg.contains("1 to 100000"), "{e}");
        assert!(check_value(&i, &serde_json::json!(u64::MAX)).is_err());
        assert!(check_value(&i, &serde_json::json!(7)).is_ok());
        let f = ParamInfo::float("lr", 0.0, 10.0, "lr");
        assert!(check_value(&f, &serde_json::Value::Null).is_err());
        assert!(check_value(&f, &serde_json::json!(-1.0)).is_err());
        assert!(check_value(&f, &serde_json::json!(0.5)).is_ok());
        let c = ParamInfo::choice("mode", &["a", "b"], "mode");
        let e = check_value(&c, &serde_json::json!("c")).unwrap_err();
        assert!(e.msg.contains("a, b"), "{e}");
        let l = ParamInfo::int_list("hidden", 1, 8192, 8, "widths");
        assert!(check_value(&l, &serde_json::json!([256, 128])).is_ok());
        for bad in [
            serde_json::json!([]),
            serde_json::json!([0]),
            serde_json::json!([9000]),
            serde_json::json!(vec![1; 9]),
        ] {
            assert!(check_value(&l, &bad).is_err(), "{bad}");
        }
    }
}
