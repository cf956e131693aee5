//! Deep SVDD (Ruff et al., ICML 2018; spec §6, reference `refbench/deep.py`): Deep SAD's network
//! and schedule without labels. The model is [`super::deep_sad::DeepSadModel`]; this file
//! registers the method.

pub use super::deep_sad::DeepSvddParams;
use super::deep_sad::{deep_sad_params, DeepSadModel, SadOrSvdd};

impl super::MethodSpec for DeepSvddParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "Deep SVDD",
            paper: "Ruff et al., Deep one-class classification (ICML 2018); spec §6, reference refbench/deep.py",
            labels: super::Labels::NormalsOnly,
            summary: "An encoder (bias-free, batch-norm) maps normals close to a centre c fixed after autoencoder pre-training; score ‖φ(x) − c‖².",
        }
    }
    fn params() -> &'static [super::ParamInfo] {
        const PARAMS: &[super::ParamInfo] = deep_sad_params!();
        PARAMS
    }
    fn validate(&self) -> Result<(), super::ParamError> {
        DeepSvddParams::validate(self).map_err(super::ParamError::from)
    }
    fn name(&self) -> String {
        "deepsvdd".into()
    }
    fn cost(&self, s: &super::cost::UnitSizes, _main: &super::Method) -> super::cost::Cost {
        self.cost_of(s)
    }
    fn build(
        &self,
        ctx: &super::BuildCtx,
    ) -> Result<Box<dyn super::Detector>, super::DetectError> {
        super::fitted::<DeepSadModel>(SadOrSvdd::Svdd(self.clone()), super::MethodSpec::name(self), ctx.seed)
    }
}
