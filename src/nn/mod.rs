//! Shared candle building blocks: layers initialised from heldout's own seeded generator (so a
//! seed gives the same weights on every machine), the stable losses, an Adam/AdamW with
//! parameter groups, gradient clipping, cosine schedules and PCGrad.

mod frozen;
mod fused;
mod layers;
pub mod ops;
mod optim;
mod pcgrad;
mod train;

pub use frozen::{par_map, threads as frozen_threads, FrozenNet, Workspace as FrozenWorkspace};
pub use layers::{
    bce_with_logit_targets, bce_with_logits, sign_pm1, Decoder, Encoder, Head, LayerNorm, Linear,
    Mode, ResBlock, Track,
};
pub use optim::{clip_grad_norm, cosine_lr, Adam, AdamConfig};
pub use pcgrad::{pcgrad, pcgrad_ordered, PcgradStats};
pub use train::{InnerNet, InnerPass, OuterAct, OuterNet};

use candle_core::{Device, Var};

/// Named trainable tensors of a model, in a fixed order (for optimisers and safetensors).
#[derive(Debug, Default, Clone)]
pub struct Params {
    pub vars: Vec<(String, Var)>,
}

impl Params {
    /// Adds a variable.
    pub fn push(&mut self, name: String, v: Var) {
        self.vars.push((name, v));
    }

    /// Variables whose name starts with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> Vec<Var> {
        self.vars
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// All variables.
    pub fn all(&self) -> Vec<Var> {
        self.vars.iter().map(|(_, v)| v.clone()).collect()
    }

    /// Saves every variable to a safetensors file.
    pub fn save(&self, path: &std::path::Path) -> candle_core::Result<()> {
        let map: std::collections::HashMap<String, candle_core::Tensor> = self
            .vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        candle_core::safetensors::save(&map, path)
    }

    /// Loads values saved by [`Params::save`] into these variables (names and shapes must match).
    pub fn load(&self, path: &std::path::Path, device: &Device) -> candle_core::Result<()> {
        let map = candle_core::safetensors::load(path, device)?;
        for (n, v) in &self.vars {
            let t = map.get(n).ok_or_else(|| {
                candle_core::Error::Msg(format!("{}: no tensor '{n}'", path.display()))
            })?;
            v.set(t)?;
        }
        Ok(())
    }
}
