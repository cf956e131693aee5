//! The cost of an experiment before it runs: each method's parameters, the peak memory of its
//! training (model, optimiser state, one step's working memory, the unit's scaled rows and the
//! run rows it holds) and of the data, and the wall time per unit and for the whole experiment,
//! from the methods' [`Cost`]s and a short calibration of this machine's matrix-multiply rate.
//!
//! An experiment whose estimated peak exceeds the memory limit (this machine's memory, or what
//! `--memory-limit` / `HELDOUT_MEMORY_LIMIT` say) is refused by `validate`, `run` and the
//! workbench with one message naming the field that makes it so large.
//!
//! The speed constants in each method's file were fitted on the development machine with
//! `heldout bench estimate` (committed outputs in `bench/results/estimate-*.txt`, which also
//! show estimate against measurement on the demo and the CIC-IDS2017 sample).

use super::config::{Device as DeviceSpec, Experiment, Method};
use crate::data::Table;
use crate::detect::cost::{Cost, UnitSizes, F32};
use crate::detect::Labels;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Instant;

/// The calibrated matrix-multiply rate on the development machine (GFLOP/s, 2 threads): the
/// methods' per-step overheads are scaled by it.
pub const REFERENCE_GFLOPS: f64 = 265.0;
/// Resident memory of the process before any data (binary, allocator, thread stacks, compute
/// pools), measured on the development machine: 11 MB before loading, ~20 MB once the compute
/// threads run (bench/results/estimate-*.txt).
pub const BASE_BYTES: f64 = 20e6;
/// Bytes of one held run row (a unit key's strings, the row's fields).
pub const RECORD_BYTES: f64 = 160.0;
/// Seconds the runner spends per run row (building, formatting, writing) and per unit (flushing
/// the files), on the development machine; scaled like the overheads.
pub const RECORD_SECONDS: f64 = 2e-6;
pub const UNIT_SECONDS: f64 = 0.02;
/// Runs estimated longer than this ask for confirmation in the workbench.
pub const LONG_RUN_SECONDS: f64 = 600.0;
/// A peak above this share of the limit is shown in the warning colour.
pub const WARN_SHARE: f64 = 0.5;

/// The measured speed of this machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Single-precision matrix-multiply rate (256 × 256 × 256 products), GFLOP/s.
    pub gflops: f64,
    pub threads: usize,
}

impl Calibration {
    /// How much slower than the development machine this one is (> 1: slower).
    pub fn slowdown(&self) -> f64 {
        REFERENCE_GFLOPS / self.gflops.max(1e-3)
    }
}

/// Measures the matrix-multiply rate on `dev` once per process and device kind (~20 ms): the best
/// of five rounds of ten 256 × 256 × 256 products.
pub fn calibrate(dev: &candle_core::Device) -> Calibration {
    static CPU: OnceLock<Calibration> = OnceLock::new();
    static GPU: OnceLock<Calibration> = OnceLock::new();
    let cell = if dev.is_cpu() { &CPU } else { &GPU };
    *cell.get_or_init(|| {
        measure(dev).unwrap_or(Calibration {
            gflops: REFERENCE_GFLOPS,
            threads: crate::nn::frozen_threads(),
        })
    })
}

fn measure(dev: &candle_core::Device) -> candle_core::Result<Calibration> {
    use candle_core::{DType, Tensor};
    const N: usize = 256;
    let a = Tensor::ones((N, N), DType::F32, dev)?.affine(0.5, 0.25)?;
    let b = Tensor::ones((N, N), DType::F32, dev)?.affine(0.25, 0.5)?;
    // warm-up (thread pools, kernels)
    a.matmul(&b)?.sum_all()?.to_scalar::<f32>()?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let mut c = a.matmul(&b)?;
        for _ in 1..10 {
            c = a.matmul(&b)?;
        }
        // reading a value waits for the device
        c.sum_all()?.to_scalar::<f32>()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    let flops = 10.0 * 2.0 * (N * N * N) as f64;
    Ok(Calibration {
        gflops: flops / best.max(1e-9) / 1e9,
        threads: crate::nn::frozen_threads(),
    })
}

/// Where the memory limit comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum LimitSource {
    /// The machine's memory (or its control group's limit).
    Machine,
    /// `--memory-limit` or `HELDOUT_MEMORY_LIMIT`.
    User(String),
}

/// The memory an experiment may use.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryLimit {
    pub bytes: f64,
    pub source: LimitSource,
}

impl MemoryLimit {
    /// The words after "needs ~X; ".
    pub fn describe(&self) -> String {
        match &self.source {
            LimitSource::Machine => format!("this machine has {}", bytes(self.bytes)),
            LimitSource::User(s) => format!("the memory limit is {} ({s})", bytes(self.bytes)),
        }
    }
}

static USER_LIMIT: OnceLock<(f64, String)> = OnceLock::new();

/// Sets the limit for this process (the command line's `--memory-limit`); the first call wins.
pub fn set_memory_limit(bytes: f64, from: &str) {
    let _ = USER_LIMIT.set((bytes, from.to_string()));
}

/// The limit in force: `--memory-limit`, else `HELDOUT_MEMORY_LIMIT`, else the machine's memory
/// (the smaller of `MemTotal` and the control group's `memory.max`).
pub fn memory_limit() -> Result<MemoryLimit, String> {
    if let Some((b, from)) = USER_LIMIT.get() {
        return Ok(MemoryLimit {
            bytes: *b,
            source: LimitSource::User(from.clone()),
        });
    }
    if let Ok(v) = std::env::var("HELDOUT_MEMORY_LIMIT") {
        let b = parse_size(&v).map_err(|e| format!("HELDOUT_MEMORY_LIMIT={v}: {e}"))?;
        return Ok(MemoryLimit {
            bytes: b,
            source: LimitSource::User("HELDOUT_MEMORY_LIMIT".into()),
        });
    }
    Ok(MemoryLimit {
        bytes: machine_memory(),
        source: LimitSource::Machine,
    })
}

/// This machine's memory in bytes (Linux: `MemTotal`, lowered by a cgroup v2 `memory.max`);
/// 16 GiB where it cannot be read.
pub fn machine_memory() -> f64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map(|kb| kb * 1024.0)
        .unwrap_or(16.0 * 1073741824.0);
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok());
    match cgroup {
        Some(c) if c > 0.0 && c < total => c,
        _ => total,
    }
}

/// A size such as `8G`, `512M`, `1.5GB`, `24GiB` or `1e9` (bytes); units are powers of 1024.
pub fn parse_size(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 8G, 512M, 1.5GB)"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1048576.0,
        "g" | "gb" | "gib" => 1073741824.0,
        "t" | "tb" | "tib" => 1099511627776.0,
        u => return Err(format!("'{u}' is not a unit: use K, M, G or T")),
    };
    let b = x * mult;
    if !b.is_finite() || b <= 0.0 {
        return Err(format!("'{s}' must be a positive size"));
    }
    Ok(b)
}

/// A byte count for people: `512 kB`, `45 MB`, `1.2 GB`, `550 GB` (powers of 1000).
pub fn bytes(b: f64) -> String {
    let units = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    for (u, m) in units {
        if b >= m {
            let v = b / m;
            return if v >= 10.0 {
                format!("{v:.0} {u}")
            } else {
                format!("{v:.1} {u}")
            };
        }
    }
    format!("{b:.0} B")
}

/// Seconds for people: `0.4 s`, `52 s`, `3.5 min`, `2.1 h`, `4.0 days`.
pub fn duration(s: f64) -> String {
    if !s.is_finite() {
        return "∞".into();
    }
    if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 172800.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s < 3.2e9 {
        format!("{:.1} days", s / 86400.0)
    } else {
        format!("{:.0e} years", s / 3.15e7)
    }
}

/// A count for people: `812`, `12.3 k`, `4.5 M`, `34 G`.
pub fn count(x: f64) -> String {
    for (u, m) in [("G", 1e9), ("M", 1e6), ("k", 1e3)] {
        if x >= m {
            return format!("{:.1} {u}", x / m);
        }
    }
    format!("{x:.0}")
}

/// Seconds of one phase on a machine of this calibration.
pub fn phase_seconds(p: &crate::detect::cost::Phase, c: &Calibration) -> f64 {
    let rate = c.gflops.max(1e-3) * 1e9;
    p.steps * (p.flops / (rate * p.speed.efficiency) + p.speed.overhead_us * 1e-6 * c.slowdown())
}

/// One method's units.
#[derive(Debug, Clone)]
pub struct MethodEstimate {
    pub name: String,
    /// `method` or `compare[i]`: where it is in the experiment file.
    pub field: String,
    pub units: usize,
    pub cost: Cost,
    /// The unit's scaled rows (its labels decide whether every seen-family row is among them).
    pub view_bytes: f64,
    /// The run rows the unit holds until it ends.
    pub record_bytes: f64,
    pub seconds_per_unit: f64,
}

impl MethodEstimate {
    /// Peak bytes of one unit on top of the process and the data.
    pub fn unit_bytes(&self) -> f64 {
        self.cost.peak_bytes() + self.view_bytes + self.record_bytes
    }
}

/// The estimate of a whole experiment.
#[derive(Debug, Clone)]
pub struct Estimate {
    pub sizes: UnitSizes,
    pub methods: Vec<MethodEstimate>,
    /// The loaded table.
    pub data_bytes: f64,

    pub peak_bytes: f64,
    pub total_seconds: f64,
    pub limit: MemoryLimit,
    pub calibration: Calibration,
    pub device: String,
    /// To draw the episodes again when another episode setting is tried (see `culprit`).
    draw_inputs: Option<DrawInputs>,
}

/// What the episode sampler of the largest rotation starts from: its seen families, their
/// few-shot rows and the seed (to draw episodes again under other episode settings).
#[derive(Debug, Clone, PartialEq)]
pub struct DrawInputs {
    pub seen: Vec<crate::data::FamilyId>,
    pub available: Vec<usize>,
    pub seed: u64,
}

/// The first [`crate::detect::cost::DRAWS`] episodes as the sampler draws them (without the
/// hard-OOD priority list, which needs the fitted scaler: it reorders outer families, not how
/// many): each inner task's family count and the outer anomalies.
pub fn draw_episodes(
    spec: &crate::split::EpisodeSpec,
    inputs: &DrawInputs,
) -> Vec<(Vec<usize>, usize)> {
    let mut sampler =
        crate::split::EpisodeSampler::new(spec, &inputs.seen, &inputs.available, &[], inputs.seed);
    (0..spec.count.min(crate::detect::cost::DRAWS))
        .map(|_| {
            let e = sampler.next_episode();
            (
                e.inner_tasks.iter().map(Vec::len).collect(),
                e.shots.iter().sum(),
            )
        })
        .collect()
}

/// The largest unit's sizes over the experiment's rotations (the first seed's split): the
/// tasks only, no scaler or training, so that the runner can check before it starts.
pub fn unit_sizes(
    exp: &Experiment,
    table: &Table,
) -> Result<(UnitSizes, usize, Option<DrawInputs>), String> {
    let roles = exp.roles.resolve(table)?;
    let seed = exp.seeds.first().copied().unwrap_or(0);
    let splits = crate::split::split_with(table, seed, &exp.split);
    let mut s = UnitSizes {
        d: table.n_features as f64,
        normals: 0.0,
        few_shot: Vec::new(),
        seen_train: 0.0,
        val: 0.0,
        checkpoint: 0.0,
        test: 0.0,
        families: 0.0,
        held_out: 0.0,
        bins: exp.pools.histogram_bins as f64,
        episodes: exp.episodes.clone(),
        draws: Vec::new(),
    };
    let mut draw_inputs = None;
    for rot in &roles.rotations {
        let t = crate::split::build_task(
            &splits,
            &roles.normal,
            rot,
            seed,
            exp.episodes.shots,
            &exp.pools,
        );
        s.normals = s.normals.max(t.normal_train.len() as f64);
        if t.few_shot.iter().map(|(_, v)| v.len()).sum::<usize>() as f64 > s.few_shot_total() {
            s.few_shot = t.few_shot.iter().map(|(_, v)| v.len() as f64).collect();
            // the episodes as the runner will draw them (without the hard-OOD priority list,
            // which needs the scaler: it reorders outer families, not how many)
            let inputs = DrawInputs {
                seen: rot.seen.clone(),
                available: t.few_shot.iter().map(|(_, r)| r.len()).collect(),
                seed,
            };
            s.draws = draw_episodes(&exp.episodes, &inputs);
            draw_inputs = Some(inputs);
        }
        s.seen_train = s
            .seen_train
            .max(t.seen_train.iter().map(|(_, v)| v.len()).sum::<usize>() as f64);
        s.val = s.val.max(t.val_pool.rows.len() as f64);
        let normals = t
            .checkpoint
            .iter()
            .map(|(_, p)| p.per_class().0)
            .max()
            .unwrap_or(0);
        let anomalies: usize = t.checkpoint.iter().map(|(_, p)| p.per_class().1).sum();
        s.checkpoint = s.checkpoint.max((normals + anomalies) as f64);
        s.test = s
            .test
            .max(t.test.iter().map(|(_, p)| p.rows.len()).sum::<usize>() as f64);
        s.families = s.families.max(t.checkpoint.len() as f64);
        s.held_out = s.held_out.max(rot.held_out.len() as f64);
    }
    Ok((s, roles.rotations.len(), draw_inputs))
}

/// Bytes of a loaded table: features, family ids, source rows, names.
pub fn table_bytes(t: &Table) -> f64 {
    let names: usize = t
        .feature_names
        .iter()
        .chain(&t.families)
        .map(|n| n.len() + 24)
        .sum();
    t.features.len() as f64 * F32 + t.n_rows as f64 * (2.0 + 8.0) + names as f64
}

/// The device the experiment asks for, as candle sees it here (the CPU when CUDA is not built).
fn candle_device(spec: DeviceSpec) -> (candle_core::Device, String) {
    match spec {
        DeviceSpec::Cpu => (candle_core::Device::Cpu, "CPU".into()),
        DeviceSpec::Auto | DeviceSpec::Cuda(_) => {
            let i = if let DeviceSpec::Cuda(i) = spec { i } else { 0 };
            match candle_core::Device::new_cuda(i) {
                Ok(d) => (d, format!("CUDA:{i}")),
                Err(_) => (candle_core::Device::Cpu, "CPU".into()),
            }
        }
    }
}

impl Estimate {
    /// The estimate of `exp` on `table`, with this machine's calibration and memory limit.
    pub fn of(exp: &Experiment, table: &Table) -> Result<Estimate, String> {
        let (dev, device) = candle_device(exp.device);
        let calibration = calibrate(&dev);
        Self::with(exp, table, memory_limit()?, calibration, device)
    }

    /// The estimate with a given limit and calibration (deterministic: what tests use).
    pub fn with(
        exp: &Experiment,
        table: &Table,
        limit: MemoryLimit,
        calibration: Calibration,
        device: String,
    ) -> Result<Estimate, String> {
        let (sizes, rotations, draw_inputs) = unit_sizes(exp, table)?;
        Ok(Self::from_sizes(
            exp,
            sizes,
            draw_inputs,
            table_bytes(table),
            rotations,
            limit,
            calibration,
            device,
        ))
    }

    #[allow(clippy::too_many_arguments)] // the parts `with` and `culprit` hold separately
    fn from_sizes(
        exp: &Experiment,
        sizes: UnitSizes,
        draw_inputs: Option<DrawInputs>,
        data_bytes: f64,
        rotations: usize,
        limit: MemoryLimit,
        calibration: Calibration,
        device: String,
    ) -> Estimate {
        let units = exp.seeds.len() * rotations;
        let slow = calibration.slowdown();
        let methods: Vec<MethodEstimate> = std::iter::once(&exp.method)
            .chain(&exp.compare)
            .enumerate()
            .map(|(i, m)| {
                let cost = m.cost(&sizes, &exp.method);
                let rows = sizes.normals
                    + sizes.few_shot_total()
                    + sizes.val
                    + sizes.checkpoint
                    + if m.labels() == Labels::AllSeen {
                        sizes.seen_train
                    } else {
                        0.0
                    };
                // the scaled rows, plus one test block scaled while it is scored
                let view_bytes = (rows + sizes.test) * sizes.d * F32;
                let seconds = cost
                    .phases
                    .iter()
                    .map(|p| phase_seconds(p, &calibration))
                    .sum::<f64>()
                    + (cost.records * RECORD_SECONDS + UNIT_SECONDS) * slow;
                MethodEstimate {
                    name: m.name(),
                    field: if i == 0 {
                        "method".into()
                    } else {
                        format!("compare[{}]", i - 1)
                    },
                    units,
                    record_bytes: cost.records * RECORD_BYTES,
                    cost,
                    view_bytes,
                    seconds_per_unit: seconds,
                }
            })
            .collect();
        let largest = methods
            .iter()
            .map(MethodEstimate::unit_bytes)
            .fold(0.0, f64::max);

        let total_seconds = methods
            .iter()
            .map(|m| m.seconds_per_unit * m.units as f64)
            .sum();
        Estimate {
            sizes,
            methods,
            data_bytes,
            peak_bytes: BASE_BYTES + data_bytes + largest,
            total_seconds,
            limit,
            calibration,
            device,
            draw_inputs,
        }
    }

    /// Whether the peak exceeds the limit.
    pub fn too_large(&self) -> bool {
        self.peak_bytes > self.limit.bytes
    }

    /// Whether the peak is close to the limit (shown in the warning colour).
    pub fn close_to_limit(&self) -> bool {
        self.peak_bytes > WARN_SHARE * self.limit.bytes
    }

    /// `Err(one line)` when the experiment does not fit: the field that makes it so large, the
    /// size it implies and the limit.
    pub fn check_memory(&self, exp: &Experiment) -> Result<(), String> {
        if !self.too_large() {
            return Ok(());
        }
        let culprit = self.culprit(exp);
        let hint = match self.limit.source {
            LimitSource::Machine => "lower it, or set a limit with --memory-limit (HELDOUT_MEMORY_LIMIT) if this machine's memory is not what bounds the run",
            LimitSource::User(_) => "lower it, or raise the limit",
        };
        Err(match culprit {
            Some((field, value, method)) => {
                let m = &self.methods[method];
                format!(
                    "`{field}: {value}` needs ~{} at peak ({}: {} of weights and optimiser state, {} for one training step); {} — {hint}",
                    bytes(self.peak_bytes),
                    m.name,
                    bytes(m.cost.state_bytes),
                    bytes(m.cost.step_bytes + m.view_bytes + m.record_bytes),
                    self.limit.describe()
                )
            }
            None => format!(
                "the experiment needs ~{} at peak (data {}, the largest unit {}); {} — use fewer rows or features (ignore families, drop columns), or raise the limit",
                bytes(self.peak_bytes),
                bytes(self.data_bytes),
                bytes(self.peak_bytes - self.data_bytes - BASE_BYTES),
                self.limit.describe()
            ),
        })
    }

    /// The method parameter or experiment field whose return to its default lowers the peak the
    /// most: `(field path, value as written, method index)`.
    fn culprit(&self, exp: &Experiment) -> Option<(String, String, usize)> {
        let peak = |e: &Experiment| {
            Self::from_sizes(
                e,
                self.sizes_for(e),
                self.draw_inputs.clone(),
                self.data_bytes,
                1,
                self.limit.clone(),
                self.calibration,
                self.device.clone(),
            )
            .peak_bytes
        };
        let now = peak(exp);
        let mut best: Option<(f64, String, String, usize)> = None;
        let mut consider = |drop: f64, field: String, value: String, method: usize| {
            if drop > 0.0 && best.as_ref().is_none_or(|b| drop > b.0) {
                best = Some((drop, field, value, method));
            }
        };
        let methods: Vec<&Method> = std::iter::once(&exp.method).chain(&exp.compare).collect();
        for (i, m) in methods.iter().enumerate() {
            // an estimate of another experiment (a stale one) names nothing
            let me = self.methods.get(i)?;
            let Ok(v) = serde_json::to_value(m) else {
                continue;
            };
            let key = m.key();
            let Some(fields) = v.get(key).and_then(|f| f.as_object()) else {
                continue;
            };
            let Some(default) = Method::from_key(key)
                .and_then(|d| serde_json::to_value(d).ok())
                .and_then(|d| d.get(key).cloned())
            else {
                continue;
            };
            for (name, value) in fields {
                let Some(dv) = default.get(name) else {
                    continue;
                };
                if dv == value {
                    continue;
                }
                let mut changed = v.clone();
                changed[key][name] = dv.clone();
                let Ok(m2) = serde_json::from_value::<Method>(changed) else {
                    continue;
                };
                let mut e2 = exp.clone();
                if i == 0 {
                    e2.method = m2;
                } else {
                    e2.compare[i - 1] = m2;
                }
                consider(
                    now - peak(&e2),
                    format!("{}.{name}", me.field),
                    value.to_string(),
                    i,
                );
            }
        }
        // experiment-level settings, each back to its default (the episodes drawn again)
        let largest = self
            .methods
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.unit_bytes().total_cmp(&b.1.unit_bytes()))
            .map_or(0, |(i, _)| i);
        let d = crate::split::EpisodeSpec::default();
        let ep = &exp.episodes;
        let with_episodes = |f: &dyn Fn(&mut crate::split::EpisodeSpec)| {
            let mut e2 = exp.clone();
            f(&mut e2.episodes);
            e2
        };
        let candidates: [(&str, String, Experiment); 6] = [
            (
                "episodes.count",
                ep.count.to_string(),
                with_episodes(&|e| e.count = d.count),
            ),
            (
                "episodes.inner_tasks",
                format!("({}, {})", ep.inner_tasks.0, ep.inner_tasks.1),
                with_episodes(&|e| e.inner_tasks = d.inner_tasks),
            ),
            (
                "episodes.families_per_task",
                ep.families_per_task.to_string(),
                with_episodes(&|e| e.families_per_task = d.families_per_task),
            ),
            (
                "episodes.outer_families",
                ep.outer_families.to_string(),
                with_episodes(&|e| e.outer_families = d.outer_families),
            ),
            (
                "episodes.shots",
                ep.shots.to_string(),
                with_episodes(&|e| e.shots = d.shots),
            ),
            (
                "pools.histogram_bins",
                exp.pools.histogram_bins.to_string(),
                Experiment {
                    pools: crate::split::PoolSpec {
                        histogram_bins: crate::split::PoolSpec::default().histogram_bins,
                        ..exp.pools
                    },
                    ..exp.clone()
                },
            ),
        ];
        for (field, value, e2) in candidates {
            consider(now - peak(&e2), field.into(), value, largest);
        }
        best.map(|(_, f, v, i)| (f, v, i))
    }

    /// The unit sizes under another experiment's episode and pool settings: the rows stay the
    /// plan's; the episodes are drawn again when their settings differ.
    fn sizes_for(&self, e: &Experiment) -> UnitSizes {
        let draws = match &self.draw_inputs {
            Some(inputs) if e.episodes != self.sizes.episodes => draw_episodes(&e.episodes, inputs),
            _ => self.sizes.draws.clone(),
        };
        UnitSizes {
            episodes: e.episodes.clone(),
            bins: e.pools.histogram_bins as f64,
            draws,
            ..self.sizes.clone()
        }
    }

    /// One line: time per unit and in all, peak memory.
    pub fn summary_line(&self) -> String {
        let units: usize = self.methods.iter().map(|m| m.units).sum();
        format!(
            "estimated ~{} for {units} unit(s), peak memory ~{} of {} ({}, {:.0} GFLOP/s measured)",
            duration(self.total_seconds),
            bytes(self.peak_bytes),
            bytes(self.limit.bytes),
            self.device,
            self.calibration.gflops
        )
    }

    /// The estimate as text (`heldout validate`, the workbench's plan).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let c = &self.calibration;
        let _ = writeln!(
            s,
            "cost (estimated on {}, {} thread(s), {:.0} GFLOP/s matrix multiply measured now):",
            self.device, c.threads, c.gflops
        );
        let _ = writeln!(
            s,
            "  {:<28} {:>9} {:>11} {:>11} {:>10} {:>6} {:>10}",
            "method", "params", "model+opt", "step", "per unit", "units", "total"
        );
        for m in &self.methods {
            let _ = writeln!(
                s,
                "  {:<28} {:>9} {:>11} {:>11} {:>10} {:>6} {:>10}",
                m.name,
                count(m.cost.params),
                bytes(m.cost.state_bytes),
                bytes(m.cost.step_bytes + m.view_bytes + m.record_bytes),
                duration(m.seconds_per_unit),
                m.units,
                duration(m.seconds_per_unit * m.units as f64)
            );
        }
        let _ = writeln!(
            s,
            "  data {} in memory ({:.0} rows × {:.0} features per unit at most: {:.0} normal train, {:.0} few-shot, {:.0} validation, {:.0} checkpoint, {:.0} test)",
            bytes(self.data_bytes),
            self.sizes.normals + self.sizes.few_shot_total() + self.sizes.val + self.sizes.checkpoint + self.sizes.test,
            self.sizes.d,
            self.sizes.normals,
            self.sizes.few_shot_total(),
            self.sizes.val,
            self.sizes.checkpoint,
            self.sizes.test
        );
        let _ = writeln!(
            s,
            "  peak memory ~{} (process {}, data {}, largest unit {}) of {}{}",
            bytes(self.peak_bytes),
            bytes(BASE_BYTES),
            bytes(self.data_bytes),
            bytes(self.peak_bytes - BASE_BYTES - self.data_bytes),
            bytes(self.limit.bytes),
            match &self.limit.source {
                LimitSource::Machine => " (this machine)".to_string(),
                LimitSource::User(f) => format!(" ({f})"),
            }
        );
        let _ = writeln!(s, "  whole experiment ~{}", duration(self.total_seconds));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("8G").unwrap(), 8.0 * 1073741824.0);
        assert_eq!(parse_size("512 MiB").unwrap(), 512.0 * 1048576.0);
        assert_eq!(parse_size("1.5gb").unwrap(), 1.5 * 1073741824.0);
        assert_eq!(parse_size("1e9").unwrap(), 1e9);
        for bad in ["", "G", "8X", "-1G", "0", "inf", "NaN"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(bytes(550e9), "550 GB");
        assert_eq!(bytes(1.23e9), "1.2 GB");
        assert_eq!(bytes(999.0), "999 B");
        assert_eq!(duration(0.42), "0.4 s");
        assert_eq!(duration(3600.0 * 3.0), "3.0 h");
        assert_eq!(duration(f64::INFINITY), "∞");
        assert_eq!(count(12_345.0), "12.3 k");
    }
}
