//! The plan an experiment file implies — rows per family, role and split, the rotations, the
//! first episodes, warnings — computed without training. `heldout validate` prints it.

use super::config::{DataSpec, Experiment, Priority};
use crate::data::{self, FamilyId, Scaler, Table};
use crate::split::{
    build_task, split_with, Episode, EpisodeSampler, ResolvedRoles, Rotation, Task,
};
use std::fmt::Write as _;
use std::path::Path;

/// One rotation of the plan (for the first seed).
#[derive(Debug, Clone)]
pub struct RotationPlan {
    pub rotation: Rotation,
    pub task: Task,
    /// The hard-OOD priority list used by the round-robin curriculum.
    pub priority: Vec<FamilyId>,
    /// The first episodes.
    pub episodes: Vec<Episode>,
}

/// The whole plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub roles: ResolvedRoles,
    pub rotations: Vec<RotationPlan>,
    pub warnings: Vec<String>,
}

/// Loads the experiment's data (paths relative to `base`, the experiment file's folder).
pub fn load_data(exp: &Experiment, base: &Path) -> anyhow::Result<Table> {
    Ok(match &exp.data {
        DataSpec::File(f) => data::load(&base.join(&f.path), &f.load_options(base))?,
        DataSpec::Demo { kind, seed } => data::demo::table(*kind, *seed),
    })
}

/// The hard-OOD priority list: an explicit list, or the reference's rule — the (up to) three
/// seen families whose few-shot rows are least separable from the normal train rows by the
/// Euclidean distance to the normal median, in scaled units (lowest AUC first). Uses labelled
/// training rows only.
pub fn priority_families(
    exp: &Experiment,
    table: &Table,
    task: &Task,
    scaler: &Scaler,
) -> Vec<FamilyId> {
    match &exp.episodes.priority {
        Priority::List(names) => names.iter().filter_map(|n| table.family_id(n)).collect(),
        Priority::Auto => {
            let d = table.n_features;
            let normals = scaler.transform(&table.features, &task.normal_train);
            let all: Vec<usize> = (0..task.normal_train.len()).collect();
            let median = data::Imputer::fit(&normals, d, &all).median;
            let dist = |rows: &[f32]| -> Vec<f64> {
                rows.chunks_exact(d)
                    .map(|r| {
                        r.iter()
                            .zip(&median)
                            .map(|(&x, &m)| (x as f64 - m).powi(2))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .collect()
            };
            let dn = dist(&normals);
            let mut aucs: Vec<(f64, FamilyId)> = task
                .few_shot
                .iter()
                .filter(|(_, rows)| !rows.is_empty())
                .map(|(f, rows)| {
                    let da = dist(&scaler.transform(&table.features, rows));
                    let mut scores = dn.clone();
                    scores.extend(&da);
                    let mut labels = vec![false; dn.len()];
                    labels.extend(std::iter::repeat_n(true, da.len()));
                    (crate::eval::roc_auc(&labels, &scores).unwrap_or(0.5), *f)
                })
                .collect();
            aucs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            aucs.into_iter().take(3).map(|(_, f)| f).collect()
        }
    }
}

/// The task, fitted scaler and hard-OOD priority list of one rotation and seed: what both the
/// plan and the runner start from.
pub fn prepare_rotation(
    exp: &Experiment,
    table: &Table,
    splits: &[crate::split::FamilySplit],
    normal: &[FamilyId],
    rot: &Rotation,
    seed: u64,
) -> anyhow::Result<(Task, Scaler, Vec<FamilyId>)> {
    let task = build_task(splits, normal, rot, seed, exp.episodes.shots, &exp.pools);
    if task.scaler_rows.is_empty() {
        let (n, d) = exp.split.train;
        anyhow::bail!(
            "split.train: {n}/{d} of each family's rows leaves no training rows of the normal and seen families to fit the scaler on — raise split.train"
        );
    }
    let scaler = Scaler::fit(
        exp.scaler,
        &table.features,
        table.n_features,
        &task.scaler_rows,
    )?;
    let priority = priority_families(exp, table, &task, &scaler);
    Ok((task, scaler, priority))
}

impl Plan {
    /// Builds the plan for the first seed, with `n_episodes` episodes shown per rotation.
    pub fn build(exp: &Experiment, table: &Table, n_episodes: usize) -> anyhow::Result<Plan> {
        let roles = exp.roles.resolve(table).map_err(anyhow::Error::msg)?;
        let seed = exp.seeds.first().copied().unwrap_or(0);
        let splits = split_with(table, seed, &exp.split);
        let mut warnings = roles.warnings.clone();
        let name = |f: FamilyId| table.families[f as usize].as_str();
        let mut rotations = Vec::new();
        for rot in &roles.rotations {
            let (task, _, priority) =
                prepare_rotation(exp, table, &splits, &roles.normal, rot, seed)?;
            let available: Vec<usize> = task.few_shot.iter().map(|(_, r)| r.len()).collect();
            let mut sampler =
                EpisodeSampler::new(&exp.episodes, &rot.seen, &available, &priority, seed);
            let episodes = (0..n_episodes.min(exp.episodes.count))
                .map(|_| sampler.next_episode())
                .collect();
            for (f, pool) in &task.test {
                let (n, a) = pool.per_class();
                if a < 30 {
                    warnings.push(format!(
                        "held-out family '{}': its test block has only {a} anomalies and {n} normals — its AUC will vary a lot",
                        name(*f)
                    ));
                }
            }
            rotations.push(RotationPlan {
                rotation: rot.clone(),
                task,
                priority,
                episodes,
            });
        }
        // Families too small for the requested shots (in any rotation where they are seen).
        let mut small: Vec<(FamilyId, usize)> = Vec::new();
        for r in &rotations {
            for (f, rows) in &r.task.few_shot {
                if rows.len() < exp.episodes.shots && !small.iter().any(|(g, _)| g == f) {
                    small.push((*f, rows.len()));
                }
            }
        }
        for (f, n) in small {
            warnings.push(format!(
                "family '{}' has {n} training rows, fewer than shots {}: its episodes use {n}",
                name(f),
                exp.episodes.shots
            ));
        }
        if rotations.iter().all(|r| r.rotation.seen.len() < 2) {
            warnings.push("every rotation has fewer than two seen families: inner and outer families cannot rotate (the episode structure degenerates)".into());
        }
        if let Priority::List(names) = &exp.episodes.priority {
            for n in names {
                if table.family_id(n).is_none() {
                    warnings.push(format!(
                        "episodes.priority names '{n}', which is not a family of the data"
                    ));
                }
            }
        }
        Ok(Plan {
            roles,
            rotations,
            warnings,
        })
    }

    /// The plan as text.
    pub fn to_text(&self, exp: &Experiment, table: &Table) -> String {
        let mut s = String::new();
        let name = |f: FamilyId| table.families[f as usize].clone();
        let names = |v: &[FamilyId]| v.iter().map(|&f| name(f)).collect::<Vec<_>>().join(", ");
        let seed = exp.seeds.first().copied().unwrap_or(0);
        let _ = writeln!(s, "experiment  {}", exp.name);
        let _ = writeln!(
            s,
            "data        {} rows × {} features, {} families",
            table.n_rows,
            table.n_features,
            table.families.len()
        );
        let _ = writeln!(s, "protocol    {:?}; scaler {:?}", exp.protocol, exp.scaler);
        let methods: Vec<String> = std::iter::once(&exp.method)
            .chain(&exp.compare)
            .map(|m| m.name())
            .collect();
        let _ = writeln!(s, "methods     {}", methods.join(", "));
        let _ = writeln!(
            s,
            "seeds       {:?}   rotations {}   runs {}",
            exp.seeds,
            self.rotations.len(),
            exp.seeds.len() * self.rotations.len() * methods.len()
        );
        let _ = writeln!(s, "normal      {}", names(&self.roles.normal));
        if !self.roles.ignored.is_empty() {
            let _ = writeln!(s, "ignored     {}", names(&self.roles.ignored));
        }
        // rows per family and split (seed of the plan)
        let splits = split_with(table, seed, &exp.split);
        let counts = table.family_counts();
        let _ = writeln!(s, "\nrows per family (seed {seed}):");
        let _ = writeln!(
            s,
            "  {:<22} {:>8} {:>8} {:>8} {:>8}",
            "family", "rows", "train", "val", "test"
        );
        for (f, sp) in splits.iter().enumerate() {
            let _ = writeln!(
                s,
                "  {:<22} {:>8} {:>8} {:>8} {:>8}",
                table.families[f],
                counts[f],
                sp.train.len(),
                sp.val.len(),
                sp.test.len()
            );
        }
        let _ = writeln!(s, "\nrotations:");
        for r in &self.rotations {
            let t = &r.task;
            let (vn, va) = t.val_pool.per_class();
            let _ = writeln!(s, "  held out: {}", names(&r.rotation.held_out));
            let _ = writeln!(s, "    seen (few-shot): {}", names(&r.rotation.seen));
            let fs: Vec<String> = t
                .few_shot
                .iter()
                .map(|(f, v)| format!("{} {}", name(*f), v.len()))
                .collect();
            let _ = writeln!(s, "    few-shot rows: {}", fs.join(", "));
            let _ = writeln!(
                s,
                "    normal train {}   scaler fitted on {} rows   validation pool {vn} normal + {va} anomalous",
                t.normal_train.len(),
                t.scaler_rows.len()
            );
            for (f, p) in &t.test {
                let (n, a) = p.per_class();
                let _ = writeln!(s, "    test block {}: {n} normal + {a} anomalous", name(*f));
            }
            let _ = writeln!(s, "    priority (hard-OOD): {}", names(&r.priority));
            for e in &r.episodes {
                let tasks: Vec<String> = e
                    .inner_tasks
                    .iter()
                    .map(|t| format!("[{}]", names(t)))
                    .collect();
                let outer: Vec<String> = e
                    .outer
                    .iter()
                    .zip(&e.shots)
                    .map(|(&f, n)| format!("{} ×{n}", name(f)))
                    .collect();
                let _ = writeln!(
                    s,
                    "    episode {:>2}: inner {}  outer {}",
                    e.index,
                    tasks.join(" "),
                    outer.join(", ")
                );
            }
        }
        if self.warnings.is_empty() {
            let _ = writeln!(s, "\nno warnings");
        } else {
            let _ = writeln!(s, "\nwarnings:");
            for w in &self.warnings {
                let _ = writeln!(s, "  ! {w}");
            }
        }
        s
    }
}
