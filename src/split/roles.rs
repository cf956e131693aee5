//! Family roles and the rotations they imply.

use serde::{Deserialize, Serialize};

/// Which family plays which part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// Normal families (benign traffic, the healthy class).
    pub normal: Vec<String>,
    /// Families never seen in training, only tested.
    #[serde(default)]
    pub held_out: HeldOut,
    /// Families labelled a few at a time in training; `All` = every family that is not normal,
    /// held out or ignored.
    #[serde(default)]
    pub few_shot: FewShot,
    /// Families left out entirely.
    #[serde(default)]
    pub ignored: Vec<String>,
}

/// Held-out families.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HeldOut {
    /// Leave-one-family-out: one rotation per anomaly family with at least `min_rows` rows
    /// (the paper's Table 1 protocol).
    RotateEach {
        #[serde(default = "default_min_rows")]
        min_rows: usize,
    },
    /// One rotation with these families held out together.
    Fixed(Vec<String>),
}

fn default_min_rows() -> usize {
    50
}

impl Default for HeldOut {
    fn default() -> Self {
        HeldOut::RotateEach { min_rows: 50 }
    }
}

/// Few-shot families.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FewShot {
    /// Every anomaly family not held out or ignored.
    #[default]
    All,
    /// Only these; other anomaly families that are not held out are ignored.
    Only(Vec<String>),
}

use crate::data::{FamilyId, Table};

/// One rotation: the families held out together and the seen (few-shot) families.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub held_out: Vec<FamilyId>,
    pub seen: Vec<FamilyId>,
}

/// Roles resolved against a table.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedRoles {
    pub normal: Vec<FamilyId>,
    pub ignored: Vec<FamilyId>,
    pub rotations: Vec<Rotation>,
    /// Things worth knowing before spending compute.
    pub warnings: Vec<String>,
}

impl Roles {
    /// Resolves family names against `table`; unknown names and contradictions are errors
    /// naming the field and listing the families that exist.
    pub fn resolve(&self, table: &Table) -> Result<ResolvedRoles, String> {
        let ids = |field: &str, names: &[String]| -> Result<Vec<FamilyId>, String> {
            names
                .iter()
                .map(|n| {
                    table.family_id(n).ok_or_else(|| {
                        format!(
                            "roles.{field}: no family '{n}' in the data; families are: {}",
                            table.families.join(", ")
                        )
                    })
                })
                .collect()
        };
        let normal = ids("normal", &self.normal)?;
        let ignored = ids("ignored", &self.ignored)?;
        if let Some(f) = normal.iter().find(|f| ignored.contains(f)) {
            return Err(format!(
                "roles: '{}' is both normal and ignored",
                table.families[*f as usize]
            ));
        }
        let counts = table.family_counts();
        let anomaly: Vec<FamilyId> = (0..table.families.len() as FamilyId)
            .filter(|f| !normal.contains(f) && !ignored.contains(f))
            .collect();
        let name = |f: &FamilyId| table.families[*f as usize].clone();
        let mut warnings = Vec::new();
        let few_shot: Vec<FamilyId> = match &self.few_shot {
            FewShot::All => anomaly.clone(),
            FewShot::Only(list) => {
                let fs = ids("few_shot", list)?;
                if let Some(f) = fs.iter().find(|f| !anomaly.contains(f)) {
                    return Err(format!(
                        "roles.few_shot: '{}' is normal or ignored",
                        name(f)
                    ));
                }
                fs
            }
        };
        let mut rotations = Vec::new();
        match &self.held_out {
            HeldOut::RotateEach { min_rows } => {
                let candidates: Vec<FamilyId> = match &self.few_shot {
                    FewShot::All => anomaly.clone(),
                    FewShot::Only(_) => few_shot.clone(),
                };
                for f in candidates {
                    if counts[f as usize] < *min_rows {
                        warnings.push(format!(
                            "held-out family '{}' has {} rows, fewer than min_rows {}: not rotated",
                            name(&f),
                            counts[f as usize],
                            min_rows
                        ));
                        continue;
                    }
                    rotations.push(Rotation {
                        held_out: vec![f],
                        seen: few_shot.iter().copied().filter(|&g| g != f).collect(),
                    });
                }
            }
            HeldOut::Fixed(list) => {
                let held = ids("held_out", list)?;
                if let Some(f) = held.iter().find(|f| !anomaly.contains(f)) {
                    return Err(format!(
                        "roles.held_out: '{}' is normal or ignored",
                        name(f)
                    ));
                }
                rotations.push(Rotation {
                    seen: few_shot
                        .iter()
                        .copied()
                        .filter(|g| !held.contains(g))
                        .collect(),
                    held_out: held,
                });
            }
        }
        if rotations.is_empty() {
            return Err(
                "roles.held_out: no family is held out (check min_rows and the role lists)".into(),
            );
        }
        if let FewShot::Only(_) = self.few_shot {
            for f in &anomaly {
                if !few_shot.contains(f) && !rotations.iter().any(|r| r.held_out.contains(f)) {
                    warnings.push(format!(
                        "family '{}' has no role (not few-shot, not held out): it is not used",
                        name(f)
                    ));
                }
            }
        }
        if rotations.iter().any(|r| r.seen.is_empty()) {
            warnings.push(
                "a rotation has no seen anomaly family: only unsupervised methods can learn from it"
                    .into(),
            );
        }
        Ok(ResolvedRoles {
            normal,
            ignored,
            rotations,
            warnings,
        })
    }
}
