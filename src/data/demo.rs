//! The built-in demo datasets, generated from a seed so that heldout shows something useful with
//! no file at hand. Families range from easy to hard to tell from normal, so a held-out-family
//! experiment on them has a story to tell.

use super::report::CleaningReport;
use super::table::Table;
use crate::rng::SplitMix64;

/// Which demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum DemoKind {
    /// 12 features, a two-cluster normal class with correlated features, six anomaly families.
    #[default]
    Tabular,
    /// 2 features, for teaching: normal points in two blobs, four anomaly families you can see.
    TwoD,
}

impl DemoKind {
    /// Name used on the command line and in experiment files.
    pub fn name(self) -> &'static str {
        match self {
            DemoKind::Tabular => "demo",
            DemoKind::TwoD => "demo-2d",
        }
    }

    /// What each family is, for `inspect` and the GUI.
    pub fn describe(self) -> &'static [(&'static str, &'static str)] {
        match self {
            DemoKind::Tabular => &[
                ("Normal", "two correlated Gaussian clusters"),
                ("Flood", "easy: far shift in four features"),
                ("Scan", "easy: one feature very large, others near zero"),
                ("Burst", "medium: normal shape, three times the spread"),
                ("Drift", "hard: a small shift along the clusters' main axis"),
                ("Mimic", "hard: normal marginals, broken correlations"),
                (
                    "Rare",
                    "small (60 rows): a tight cluster between the normal ones",
                ),
            ],
            DemoKind::TwoD => &[
                ("Normal", "two Gaussian blobs"),
                ("Ring", "a ring around everything (easy)"),
                ("Cluster", "a tight cluster off to the side (easy)"),
                ("Bridge", "points between the two blobs (hard)"),
                ("Halo", "a thin shell hugging one blob (hard)"),
            ],
        }
    }
}

/// Generates a demo table.
pub fn table(kind: DemoKind, seed: u64) -> Table {
    let mut g = SplitMix64::new(seed ^ 0xDE30_0000);
    let mut rows: Vec<(String, Vec<f32>)> = Vec::new();
    match kind {
        DemoKind::Tabular => tabular(&mut g, &mut rows),
        DemoKind::TwoD => two_d(&mut g, &mut rows),
    }
    // Shuffle so that families interleave as in a capture.
    g.shuffle(&mut rows);
    let mut families: Vec<String> = rows.iter().map(|(f, _)| f.clone()).collect();
    families.sort();
    families.dedup();
    let d = rows[0].1.len();
    let mut features = Vec::with_capacity(rows.len() * d);
    let mut family = Vec::with_capacity(rows.len());
    for (f, x) in &rows {
        features.extend_from_slice(x);
        family.push(families.iter().position(|n| n == f).unwrap_or(0) as u32);
    }
    let n = rows.len();
    let feature_names = if d == 2 {
        vec!["x".to_string(), "y".to_string()]
    } else {
        (0..d).map(|j| format!("f{j:02}")).collect()
    };
    Table {
        features,
        n_rows: n,
        n_features: d,
        feature_names,
        family,
        families,
        source_row: (0..n as u64).collect(),
        label_column: "family".into(),
        report: CleaningReport {
            lines_read: n as u64,
            rows_kept: n as u64,
            ..Default::default()
        },
    }
}

fn normal_point(g: &mut SplitMix64, d: usize) -> Vec<f64> {
    // Two clusters; within each, features come in correlated pairs (x, 0.8x + 0.6e).
    let c = if g.next_f64() < 0.5 { -1.5 } else { 1.5 };
    let mut v = Vec::with_capacity(d);
    for j in (0..d).step_by(2) {
        let a = g.next_normal();
        let b = 0.8 * a + 0.6 * g.next_normal();
        v.push(a + c);
        if j + 1 < d {
            v.push(b + c * 0.5);
        }
    }
    v
}

fn tabular(g: &mut SplitMix64, rows: &mut Vec<(String, Vec<f32>)>) {
    const D: usize = 12;
    let f32v = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    for _ in 0..4000 {
        let v = normal_point(g, D);
        rows.push(("Normal".into(), f32v(v)));
    }
    for _ in 0..600 {
        let mut v = normal_point(g, D);
        for x in v.iter_mut().take(4) {
            *x += 5.0;
        }
        rows.push(("Flood".into(), f32v(v)));
    }
    for _ in 0..600 {
        let mut v: Vec<f64> = (0..D).map(|_| 0.1 * g.next_normal()).collect();
        v[7] = 8.0 + 2.0 * g.next_normal();
        rows.push(("Scan".into(), f32v(v)));
    }
    for _ in 0..500 {
        let v = normal_point(g, D).into_iter().map(|x| 3.0 * x).collect();
        rows.push(("Burst".into(), f32v(v)));
    }
    for _ in 0..600 {
        let mut v = normal_point(g, D);
        for (j, x) in v.iter_mut().enumerate() {
            *x += if j % 2 == 0 { 0.9 } else { 0.7 };
        }
        rows.push(("Drift".into(), f32v(v)));
    }
    for _ in 0..600 {
        // same marginals, anti-correlated pairs
        let c = if g.next_f64() < 0.5 { -1.5 } else { 1.5 };
        let mut v = Vec::with_capacity(D);
        for _ in (0..D).step_by(2) {
            let a = g.next_normal();
            let b = -0.8 * a + 0.6 * g.next_normal();
            v.push(a + c);
            v.push(b + c * 0.5);
        }
        rows.push(("Mimic".into(), f32v(v)));
    }
    for _ in 0..60 {
        let v: Vec<f64> = (0..D)
            .map(|j| if j % 2 == 0 { 0.0 } else { 2.5 } + 0.2 * g.next_normal())
            .collect();
        rows.push(("Rare".into(), f32v(v)));
    }
}

fn two_d(g: &mut SplitMix64, rows: &mut Vec<(String, Vec<f32>)>) {
    let p = |x: f64, y: f64| vec![x as f32, y as f32];
    for _ in 0..1500 {
        let (cx, cy) = if g.next_f64() < 0.5 {
            (-2.0, 0.0)
        } else {
            (2.0, 0.5)
        };
        let (x, y) = (cx + 0.7 * g.next_normal(), cy + 0.7 * g.next_normal());
        rows.push(("Normal".into(), p(x, y)));
    }
    for _ in 0..300 {
        let t = g.next_f64() * std::f64::consts::TAU;
        let r = 6.0 + 0.3 * g.next_normal();
        rows.push(("Ring".into(), p(r * t.cos(), r * t.sin())));
    }
    for _ in 0..300 {
        let (x, y) = (0.0 + 0.3 * g.next_normal(), -4.0 + 0.3 * g.next_normal());
        rows.push(("Cluster".into(), p(x, y)));
    }
    for _ in 0..300 {
        let (x, y) = (
            1.2 * g.next_normal().clamp(-1.0, 1.0),
            0.25 + 0.3 * g.next_normal(),
        );
        rows.push(("Bridge".into(), p(x, y)));
    }
    for _ in 0..300 {
        let t = g.next_f64() * std::f64::consts::TAU;
        let r = 2.2 + 0.15 * g.next_normal();
        rows.push(("Halo".into(), p(2.0 + r * t.cos(), 0.5 + r * t.sin())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_table_and_every_family_named_in_the_docs() {
        for kind in [DemoKind::Tabular, DemoKind::TwoD] {
            let a = table(kind, 7);
            assert_eq!(a, table(kind, 7));
            assert_ne!(a.features, table(kind, 8).features);
            let mut named: Vec<&str> = kind.describe().iter().map(|(f, _)| *f).collect();
            named.sort();
            assert_eq!(a.families, named);
            assert!(a.features.iter().all(|x| x.is_finite()));
        }
        assert_eq!(table(DemoKind::TwoD, 0).n_features, 2);
    }
}
