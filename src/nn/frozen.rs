//! The meta-learner's normal logit ℓ₀ and its input gradient ∇ₓℓ₀ on the CPU without candle's
//! graph: the hot path of ODIN (5 directions per outer pass, 1 per scored row).
//!
//! Every ODIN direction and every checkpoint score is a forward pass and a backward pass to the
//! *input* through encoder and head with all weights held fixed. Through candle that is ~60
//! tensor ops each way, every one allocating its result, plus the autograd bookkeeping; profiled,
//! the matrix products were a quarter of the time. Here the same maths runs over row blocks of
//! [`CHUNK`] or [`EVAL_CHUNK`] rows in preallocated buffers ([`Workspace`]), on every core, with
//! the products on the `gemm` crate (what candle itself calls) and the element-wise passes
//! compiled for the CPU's vector width. Weight gradients are never formed.
//!
//! The maths is that of [`super::layers`] (and of the PyTorch reference): pre-norm residual
//! blocks `x + 0.5·W₂·GELU(LN₂(W₁·GELU(LN₁(x))))`, GELU in erf form, layer norm with biased
//! variance and ε = 1e-5. Results agree with the candle path to float rounding (tested), not bit
//! for bit: sums run in a different order.

use super::fused::{erf_with, FRAC_1_SQRT_2, INV_SQRT_2PI};
use super::layers::{Encoder, Head, LayerNorm, Linear};
use candle_core::{bail, Result, Tensor};
use std::sync::Mutex;

/// Rows per block of work in training (ODIN directions of an outer batch): an outer batch of 128
/// rows splits over two threads. Blocks are the same whatever the number of threads, and so
/// are the results.
pub const CHUNK: usize = 64;
/// Rows per block of work when scoring (many rows): every `gemm` call packs its weight
/// operand, so larger blocks amortise that (`heldout bench episode`, one thread: checkpoint
/// time 0.70 s per episode at 64 rows, 0.59 at 128, 0.53 at 256).
pub const EVAL_CHUNK: usize = 256;
const LN_EPS: f32 = 1e-5;

/// Threads for the frozen-weight passes: `HELDOUT_THREADS` if set, else the machine's cores.
/// The work is split in whole blocks of rows, so the count changes the speed, not the numbers.
/// Read once: `available_parallelism` reads the cgroup's CPU quota files at every call (0.4 %
/// of the benchmark's time in `perf` when asked per pass).
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("HELDOUT_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// One part of the work: rows of the input, of the output, and the thread's buffers.
type Part<'a, X, Y> = Option<(&'a mut [X], &'a mut [Y], &'a mut Workspace)>;

/// Runs `f` on the parts of `x` (rows of width `d`) and `y` (rows of width `dy`), one part per
/// workspace, each part a run of whole
/// `chunk`-row blocks: the first on this thread, the others on named scoped threads. A part
/// whose thread has not taken it by the time this thread is done (or could not be started) runs
/// here, so every part runs exactly once.
fn split<X, Y, F>(
    x: &mut [X],
    d: usize,
    y: &mut [Y],
    dy: usize,
    chunk: usize,
    ws: &mut [Workspace],
    f: F,
) where
    X: Send,
    Y: Send,
    F: Fn(&mut [X], &mut [Y], &mut Workspace) + Sync,
{
    let rows = x.len().checked_div(d).unwrap_or(0);
    let chunks = rows.div_ceil(chunk);
    let parts = ws.len().clamp(1, chunks.max(1));
    if parts == 1 {
        // `ws` is never empty: the public callers top it up to one workspace first.
        if let Some(w) = ws.first_mut() {
            f(x, y, w);
        }
        return;
    }
    let per = chunks.div_ceil(parts) * chunk;
    let slots: Vec<Mutex<Part<X, Y>>> = x
        .chunks_mut(per * d)
        .zip(y.chunks_mut(per * dy))
        .zip(ws.iter_mut())
        .map(|((a, b), w)| Mutex::new(Some((a, b, w))))
        .collect();
    let run = |slot: &Mutex<Part<X, Y>>| {
        let part = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((a, b, w)) = part {
            f(a, b, w);
        }
    };
    std::thread::scope(|s| {
        for slot in &slots[1..] {
            // On a failed spawn the part stays in its slot and runs below.
            let _ = std::thread::Builder::new()
                .name("heldout-frozen".into())
                .spawn_scoped(s, || run(slot));
        }
        for slot in &slots {
            run(slot);
        }
    });
}

/// `f(0), …, f(n − 1)` on up to `threads` threads (named scoped threads pulling indices from a
/// shared counter; this thread takes part, and does all the work if no thread starts). Results
/// come back in index order, so the thread count changes no result.
pub fn par_map<T: Send>(threads: usize, n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let workers = threads.min(n).saturating_sub(1);
    if workers == 0 {
        return (0..n).map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::with_capacity(n));
    let work = || loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if i >= n {
            break;
        }
        let v = f(i);
        out.lock().unwrap_or_else(|e| e.into_inner()).push((i, v));
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            // A thread that does not start leaves its share to the others and to this one.
            let _ = std::thread::Builder::new()
                .name("heldout-inner".into())
                .spawn_scoped(s, work);
        }
        work();
    });
    let mut v = out.into_inner().unwrap_or_else(|e| e.into_inner());
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, t)| t).collect()
}

pub(super) struct Ln {
    pub(super) gamma: Vec<f32>,
    pub(super) beta: Vec<f32>,
}

pub(super) struct Lin {
    /// (d_in, d_out), row-major.
    pub(super) w: Vec<f32>,
    pub(super) b: Vec<f32>,
    pub(super) d_in: usize,
    pub(super) d_out: usize,
}

struct Block {
    ln1: Ln,
    l1: Lin,
    ln2: Ln,
    l2: Lin,
}

pub(super) fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

impl Ln {
    pub(super) fn of(l: &LayerNorm) -> Result<Self> {
        Ok(Ln {
            gamma: values(l.gamma.as_tensor())?,
            beta: values(l.beta.as_tensor())?,
        })
    }
}

impl Lin {
    pub(super) fn of(l: &Linear) -> Result<Self> {
        let (d_in, d_out) = l.w.as_tensor().dims2()?;
        Ok(Lin {
            w: values(l.w.as_tensor())?,
            b: values(l.b.as_tensor())?,
            d_in,
            d_out,
        })
    }
}

/// A snapshot of encoder + head weights (ℓ₀ only), for forward and input-gradient passes.
pub struct FrozenNet {
    input: Lin,
    blocks: Vec<Block>,
    output: Lin,
    head_ln: Ln,
    /// Column 0 of the head's output layer (the normal logit), length Z.
    head_w: Vec<f32>,
    head_b: f32,
}

/// Buffers of one thread's passes, sized for the larger block.
pub struct Workspace {
    /// (D, H, Z, blocks) of the net they were made for.
    dims: (usize, usize, usize, usize),
    h: Vec<f32>,
    t: Vec<f32>,
    a: Vec<f32>,
    dgelu0: Vec<f32>,
    blocks: Vec<BlockBuf>,
    z: Vec<f32>,
    v: Vec<f32>,
    xhat_z: Vec<f32>,
    rstd_z: Vec<f32>,
    dgv: Vec<f32>,
    l0: Vec<f32>,
    grad: Vec<f32>,
}

struct BlockBuf {
    xhat1: Vec<f32>,
    rstd1: Vec<f32>,
    dg1: Vec<f32>,
    xhat2: Vec<f32>,
    rstd2: Vec<f32>,
    dg2: Vec<f32>,
}

impl Workspace {
    /// Whether these buffers fit `net`.
    pub fn fits(&self, net: &FrozenNet) -> bool {
        self.dims
            == (
                net.input.d_in,
                net.input.d_out,
                net.output.d_out,
                net.blocks.len(),
            )
    }
}

impl FrozenNet {
    /// Copies the current weights of `enc` and `head` (f32 tensors on any device).
    pub fn new(enc: &Encoder, head: &Head) -> Result<Self> {
        Self::build(enc, head, false)
    }

    /// As [`FrozenNet::new`], with the head's gap `ℓ₀ − ℓ₁` in place of `ℓ₀`: every method
    /// then computes that gap and its input gradient. For a two-class softmax (ODIN) the
    /// predicted class is the sign of the gap and the cross-entropy's input gradient points
    /// along ∓∇(ℓ₀ − ℓ₁), so [`FrozenNet::odin_logit0`] performs ODIN's step.
    pub fn with_logit_gap(enc: &Encoder, head: &Head) -> Result<Self> {
        Self::build(enc, head, true)
    }

    fn build(enc: &Encoder, head: &Head, gap: bool) -> Result<Self> {
        let input = Lin::of(&enc.input)?;
        let h = input.d_out;
        let mut blocks = Vec::with_capacity(enc.blocks.len());
        for b in &enc.blocks {
            let blk = Block {
                ln1: Ln::of(&b.ln1)?,
                l1: Lin::of(&b.l1)?,
                ln2: Ln::of(&b.ln2)?,
                l2: Lin::of(&b.l2)?,
            };
            if blk.l1.d_in != h || blk.l1.d_out != h || blk.l2.d_in != h || blk.l2.d_out != h {
                bail!("frozen net: residual blocks must be {h} wide");
            }
            blocks.push(blk);
        }
        let output = Lin::of(&enc.output)?;
        let (z, two) = head.out.w.as_tensor().dims2()?;
        if output.d_in != h || output.d_out != z || two != 2 {
            bail!("frozen net: encoder output and head do not fit");
        }
        let w = values(head.out.w.as_tensor())?;
        let b = values(head.out.b.as_tensor())?;
        // the output layer is Z × 2 (checked above), so both biases exist
        let (b0, b1) = (
            b.first().copied().unwrap_or(0.0),
            b.get(1).copied().unwrap_or(0.0),
        );
        let head_b = if gap { b0 - b1 } else { b0 };
        Ok(FrozenNet {
            input,
            blocks,
            output,
            head_ln: Ln::of(&head.ln)?,
            head_w: w
                .chunks_exact(2)
                .map(|c| if gap { c[0] - c[1] } else { c[0] })
                .collect(),
            head_b,
        })
    }

    /// Input width D.
    pub fn d(&self) -> usize {
        self.input.d_in
    }

    /// Whether the encoder has residual blocks (a drop-path draw happens only then).
    pub fn has_blocks(&self) -> bool {
        !self.blocks.is_empty()
    }

    /// Buffers for one thread.
    pub fn workspace(&self) -> Workspace {
        let (d, h, z) = (self.input.d_in, self.input.d_out, self.output.d_out);
        let buf = |w: usize| vec![0f32; EVAL_CHUNK.max(CHUNK) * w];
        Workspace {
            dims: (d, h, z, self.blocks.len()),
            h: buf(h),
            t: buf(h),
            a: buf(h),
            dgelu0: buf(h),
            blocks: (0..self.blocks.len())
                .map(|_| BlockBuf {
                    xhat1: buf(h),
                    rstd1: buf(1),
                    dg1: buf(h),
                    xhat2: buf(h),
                    rstd2: buf(1),
                    dg2: buf(h),
                })
                .collect(),
            z: buf(z),
            v: buf(z),
            xhat_z: buf(z),
            rstd_z: buf(1),
            dgv: buf(z),
            l0: buf(1),
            grad: buf(d),
        }
    }

    /// Buffers for `n` threads.
    pub fn workspaces(&self, n: usize) -> Vec<Workspace> {
        (0..n.max(1)).map(|_| self.workspace()).collect()
    }

    /// ℓ₀ of every row of `x` (rows × D) into `l0`, one thread per workspace; with `skip_last`
    /// the last residual block is dropped (drop-path).
    pub fn logit0(&self, x: &[f32], skip_last: bool, l0: &mut [f32], ws: &mut Vec<Workspace>) {
        self.top_up(ws);
        let d = self.d();
        // `split` hands out mutable parts; the input is only read
        let mut rows: Vec<&[f32]> = x.chunks(d.max(1)).collect();
        split(&mut rows, 1, l0, 1, CHUNK, ws, |xp, lp, w| {
            for (xc, lc) in xp.chunks(CHUNK).zip(lp.chunks_mut(CHUNK)) {
                let flat: Vec<f32> = xc.concat();
                self.chunk(w, &flat, skip_last, lc, false);
            }
        });
    }

    /// One ODIN step in place, one thread per workspace:
    /// `x ← x + step · sgn(ℓ₀(x)) · sgn(∇ₓ ℓ₀(x))` with sgn(0) = +1.
    pub fn odin_step(&self, x: &mut [f32], skip_last: bool, step: f32, ws: &mut Vec<Workspace>) {
        self.top_up(ws);
        let d = self.d();
        // no per-row output: a zero-sized one to split alongside
        let mut none = vec![(); x.len().checked_div(d).unwrap_or(0)];
        split(x, d, &mut none, 1, CHUNK, ws, |xp, _, w| {
            for xc in xp.chunks_mut(CHUNK * d) {
                self.odin_chunk(w, xc, skip_last, step);
            }
        });
    }

    /// Evaluation scores' logits, one thread per workspace: per row `steps` ODIN steps of size
    /// `step` (eval mode), then `x̃ ← keep·x̃ + back·x` (the pull-back), then ℓ₀(x̃) into `l0`.
    #[allow(clippy::too_many_arguments)]
    pub fn odin_logit0(
        &self,
        x: &[f32],
        steps: usize,
        step: f32,
        keep: f32,
        back: f32,
        l0: &mut [f32],
        ws: &mut Vec<Workspace>,
    ) {
        self.top_up(ws);
        let d = self.d();
        let mut rows: Vec<&[f32]> = x.chunks(d.max(1)).collect();
        split(&mut rows, 1, l0, 1, EVAL_CHUNK, ws, |xp, lp, w| {
            for (xc, lc) in xp.chunks(EVAL_CHUNK).zip(lp.chunks_mut(EVAL_CHUNK)) {
                let x0: Vec<f32> = xc.concat();
                let mut xt = x0.clone();
                for _ in 0..steps {
                    self.odin_chunk(w, &mut xt, false, step);
                }
                for (v, &o) in xt.iter_mut().zip(&x0) {
                    *v = *v * keep + o * back;
                }
                self.chunk(w, &xt, false, lc, false);
            }
        });
    }

    /// At least one workspace, and all of them made for this net.
    fn top_up(&self, ws: &mut Vec<Workspace>) {
        if ws.is_empty() || !ws.iter().all(|w| w.fits(self)) {
            *ws = self.workspaces(ws.len());
        }
    }

    /// One ODIN step on one chunk of rows.
    fn odin_chunk(&self, ws: &mut Workspace, xc: &mut [f32], skip_last: bool, step: f32) {
        let d = self.d();
        let r = xc.len() / d;
        let mut l0 = std::mem::take(&mut ws.l0);
        self.chunk(ws, xc, skip_last, &mut l0[..r], true);
        ws.l0 = l0;
        for ((row, g), &l) in xc
            .chunks_exact_mut(d)
            .zip(ws.grad.chunks_exact(d))
            .zip(&ws.l0[..r])
        {
            let s = if l >= 0.0 { step } else { -step };
            for (xv, &gv) in row.iter_mut().zip(g) {
                *xv += if gv >= 0.0 { s } else { -s };
            }
        }
    }

    simd_method! {
        /// ℓ₀ and the input gradient of `sum ℓ₀` for one chunk of rows (the gradient into
        /// `ws.grad`).
        fn chunk(
            &self,
            ws: &mut Workspace,
            x: &[f32],
            skip_last: bool,
            l0: &mut [f32],
            grad: bool
        ) -> () => FrozenNet, chunk_body
    }

    /// The passes themselves (see `simd_method!`).
    #[inline(always)]
    fn chunk_body(
        &self,
        ws: &mut Workspace,
        x: &[f32],
        skip_last: bool,
        l0: &mut [f32],
        need_grad: bool,
    ) {
        let (d, h, z) = (self.input.d_in, self.input.d_out, self.output.d_out);
        let r = l0.len();
        assert!(
            r <= EVAL_CHUNK.max(CHUNK) && x.len() == r * d,
            "frozen net: chunk shape"
        );
        let (hn, zn) = (r * h, r * z);
        let nb = self.blocks.len() - usize::from(skip_last && !self.blocks.is_empty());
        let Workspace {
            h: hb,
            t,
            a,
            dgelu0,
            blocks: bufs,
            z: zb,
            v,
            xhat_z,
            rstd_z,
            dgv,
            grad,
            ..
        } = ws;
        let (hb, t, a) = (&mut hb[..hn], &mut t[..hn], &mut a[..hn]);

        // forward
        affine(hb, x, &self.input, r);
        gelu(hb, need_grad.then(|| &mut dgelu0[..hn]));
        for (blk, buf) in self.blocks[..nb].iter().zip(bufs.iter_mut()) {
            layer_norm(
                hb,
                t,
                h,
                &blk.ln1,
                need_grad.then(|| (&mut buf.xhat1[..hn], &mut buf.rstd1[..r])),
            );
            gelu(t, need_grad.then(|| &mut buf.dg1[..hn]));
            affine(a, t, &blk.l1, r);
            layer_norm(
                a,
                t,
                h,
                &blk.ln2,
                need_grad.then(|| (&mut buf.xhat2[..hn], &mut buf.rstd2[..r])),
            );
            gelu(t, need_grad.then(|| &mut buf.dg2[..hn]));
            affine(a, t, &blk.l2, r);
            for (hv, &av) in hb.iter_mut().zip(a.iter()) {
                *hv += av * 0.5;
            }
        }
        let (zb, v) = (&mut zb[..zn], &mut v[..zn]);
        affine(zb, hb, &self.output, r);
        layer_norm(
            zb,
            v,
            z,
            &self.head_ln,
            need_grad.then(|| (&mut xhat_z[..zn], &mut rstd_z[..r])),
        );
        gelu(v, need_grad.then(|| &mut dgv[..zn]));
        for (row, out) in v.chunks_exact(z).zip(l0.iter_mut()) {
            *out = dot(row, &self.head_w) + self.head_b;
        }
        if !need_grad {
            return;
        }

        // backward of Σ ℓ₀ to the input
        for (row, dg) in v.chunks_exact_mut(z).zip(dgv.chunks_exact(z)) {
            for ((o, &g), &w) in row.iter_mut().zip(dg).zip(&self.head_w) {
                *o = w * g;
            }
        }
        layer_norm_backward(v, &self.head_ln, &xhat_z[..zn], &rstd_z[..r], zb, z, false);
        matmul_wt(hb, zb, &self.output, r, 1.0);
        for (blk, buf) in self.blocks[..nb].iter().zip(&bufs[..nb]).rev() {
            matmul_wt(t, hb, &blk.l2, r, 0.5);
            mul_assign(t, &buf.dg2[..hn]);
            layer_norm_backward(t, &blk.ln2, &buf.xhat2[..hn], &buf.rstd2[..r], a, h, false);
            matmul_wt(t, a, &blk.l1, r, 1.0);
            mul_assign(t, &buf.dg1[..hn]);
            layer_norm_backward(t, &blk.ln1, &buf.xhat1[..hn], &buf.rstd1[..r], hb, h, true);
        }
        mul_assign(hb, &dgelu0[..hn]);
        matmul_wt(&mut grad[..r * d], hb, &self.input, r, 1.0);
    }
}

/// Defines a method `$name(&self, args…) -> $ret` that runs `$body` (an `#[inline(always)]`
/// method of `$Self`) with subnormals flushed ([`FlushDenormals`]) in a copy compiled for
/// AVX-512, else AVX2 + FMA, else the baseline, whichever the CPU has: `$body` and the
/// `#[inline(always)]` kernels it calls are inlined into each copy, so their element-wise loops
/// vectorise for it. No fused multiply-add is formed without `mul_add`, so every copy computes
/// the same numbers (tested). A generic helper taking a closure was tried instead and measured
/// slower (the closure was not inlined into the feature-specific copy: 1.06 → 1.31 s/episode).
macro_rules! simd_method {
    ($(#[$doc:meta])* $vis:vis fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty
        => $Self:ty, $body:ident) => {
        $(#[$doc])*
        $vis fn $name(&self $(, $arg: $ty)*) -> $ret {
            let _flush = $crate::nn::frozen::FlushDenormals::new();
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512(this: &$Self $(, $arg: $ty)*) -> $ret {
                    this.$body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2(this: &$Self $(, $arg: $ty)*) -> $ret {
                    this.$body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features `avx512` is compiled for (checked above).
                    return unsafe { avx512(self $(, $arg)*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2(self $(, $arg)*) };
                }
            }
            self.$body($($arg),*)
        }
    };
}
pub(super) use simd_method;

/// Flush-to-zero and denormals-are-zero on this thread while the guard lives (x86-64; nothing
/// elsewhere). The backward passes produce subnormal values, and arithmetic on them takes
/// microcode assists: with them flushed the inner step's backward pass ran in half the time
/// (timed inside `heldout bench episode`: 10 → 5 ms per 256 rows). Values below 1.2e-38 become 0, as TensorFlow does by default on the CPU.
pub(super) struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut csr = 0u32;
    // SAFETY: stores the SSE control register (present on every x86-64 CPU) into a local.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr as *mut u32, options(nostack));
    }
    csr
}

#[cfg(target_arch = "x86_64")]
fn set_mxcsr(csr: u32) {
    // SAFETY: loads a value read from the register with only the FTZ (bit 15) and DAZ (bit 6)
    // flags changed; both are valid on every x86-64 CPU with SSE2 (DAZ on all but the first
    // Pentium 4 steppings, which cannot run x86-64).
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr as *const u32, options(nostack, readonly));
    }
}

impl FlushDenormals {
    pub(super) fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = mxcsr();
            set_mxcsr(saved | 0x8040);
            FlushDenormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushDenormals {}
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        set_mxcsr(self.saved);
    }
}

/// `dst = b + src·W` for `rows` rows.
#[inline(always)]
pub(super) fn affine(dst: &mut [f32], src: &[f32], l: &Lin, rows: usize) {
    for row in dst.chunks_exact_mut(l.d_out) {
        row.copy_from_slice(&l.b);
    }
    gemm_checked(
        dst, src, &l.w, rows, l.d_in, l.d_out, false, false, 1.0, true,
    );
}

/// `dst = scale · src·Wᵀ` (the backward of `src·W` to its input) for `rows` rows.
#[inline(always)]
pub(super) fn matmul_wt(dst: &mut [f32], src: &[f32], l: &Lin, rows: usize, scale: f32) {
    gemm_checked(
        dst, src, &l.w, rows, l.d_out, l.d_in, false, true, scale, false,
    );
}

/// `dst (m×n) = [dst +] scale · lhs · rhs`: `lhs` stored (m×k) row-major, or with `lhs_t` as
/// (k×m) and used transposed; `rhs` stored (k×n) row-major, or with `rhs_t` as (n×k) and used
/// transposed. All contiguous.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn gemm_checked(
    dst: &mut [f32],
    lhs: &[f32],
    rhs: &[f32],
    m: usize,
    k: usize,
    n: usize,
    lhs_t: bool,
    rhs_t: bool,
    scale: f32,
    accumulate: bool,
) {
    // Hard checks: they make the unsafe call below sound for any caller.
    assert!(
        dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n,
        "frozen net: matrix shapes"
    );
    if m == 0 || n == 0 {
        return;
    }
    let (lhs_cs, lhs_rs) = if lhs_t {
        (m as isize, 1)
    } else {
        (1, k as isize)
    };
    let (rhs_cs, rhs_rs) = if rhs_t {
        (k as isize, 1)
    } else {
        (1, n as isize)
    };
    // SAFETY: the three buffers hold at least m×n, m×k and k×n elements (asserted above), the
    // strides address exactly those elements, and `dst` is a unique borrow that aliases neither
    // input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Sum of a slice with 16 independent accumulators (vectorises; the order is fixed).
#[inline(always)]
pub(super) fn sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut it = v.chunks_exact(16);
    for c in &mut it {
        for i in 0..16 {
            acc[i] += c[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for &x in it.remainder() {
        s += x;
    }
    s
}

#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (mut ia, mut ib) = (a.chunks_exact(16), b.chunks_exact(16));
    for (ca, cb) in (&mut ia).zip(&mut ib) {
        for i in 0..16 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (&x, &y) in ia.remainder().iter().zip(ib.remainder()) {
        s += x * y;
    }
    s
}

#[inline(always)]
pub(super) fn mul_assign(a: &mut [f32], b: &[f32]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x *= y;
    }
}

/// The graph-free passes evaluate polynomials with fused multiply-adds: their fast copies are
/// compiled with the `fma` feature (one instruction instead of two), and the others compute the
/// same numbers (exact `mul_add`), only slower.
const FMA: bool = true;

#[inline(always)]
fn erf(x: f32) -> f32 {
    erf_with::<FMA>(x)
}

/// GELU in place; with `dg`, also its derivative at the input.
#[inline(always)]
pub(super) fn gelu(v: &mut [f32], dg: Option<&mut [f32]>) {
    match dg {
        Some(dg) => {
            for (x, g) in v.iter_mut().zip(dg.iter_mut()) {
                let xv = *x;
                let e = erf(xv * FRAC_1_SQRT_2);
                *g = 0.5 * (1.0 + e) + xv * INV_SQRT_2PI * exp(-0.5 * xv * xv);
                *x = 0.5 * xv * (1.0 + e);
            }
        }
        None => {
            for x in v.iter_mut() {
                *x = 0.5 * *x * (1.0 + erf(*x * FRAC_1_SQRT_2));
            }
        }
    }
}

/// e^x for x ≤ 0 without a library call (so the GELU loop vectorises): range reduction by
/// ln 2 and Cephes' degree-6 polynomial for `expf`, within 2 ulp; 0 below −87 (and 1 above 0,
/// outside the domain).
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    // `max`/`min` return the other operand for NaN, so x is finite in [−87, 0] from here on
    // (`clamp` would pass a NaN through, which the conversion below must not see)
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(0.0);
    let n = (x * std::f32::consts::LOG2_E).round();
    // x − n·ln 2 in two parts (Cody–Waite)
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let e = (p * r).mul_add(r, r) + 1.0;
    // 2^n by the exponent bits. `as i32` saturates (and maps NaN to 0): LLVM scalarised that,
    // 16 conversions with two compares each per vector (seen in `perf annotate`).
    // SAFETY: x ∈ [−87, 0], so n + 127 is an integer in [1, 127], exactly representable as i32.
    let biased = unsafe { (n + 127.0).to_int_unchecked::<i32>() };
    e * f32::from_bits((biased as u32) << 23)
}

/// Layer norm of each `d`-wide row of `src` into `dst`; with `stats`, x̂ and 1/σ are kept for
/// the backward pass.
#[inline(always)]
pub(super) fn layer_norm(
    src: &[f32],
    dst: &mut [f32],
    d: usize,
    ln: &Ln,
    mut stats: Option<(&mut [f32], &mut [f32])>,
) {
    let inv_d = 1.0 / d as f32;
    for (i, (row, out)) in src.chunks_exact(d).zip(dst.chunks_exact_mut(d)).enumerate() {
        let mean = sum(row) * inv_d;
        let mut acc = [0f32; 16];
        let mut it = row.chunks_exact(16);
        for c in &mut it {
            for k in 0..16 {
                let dv = c[k] - mean;
                acc[k] += dv * dv;
            }
        }
        let mut var = acc.iter().sum::<f32>();
        for &v in it.remainder() {
            var += (v - mean) * (v - mean);
        }
        let rs = 1.0 / (var * inv_d + LN_EPS).sqrt();
        for ((o, &v), (&g, &b)) in out.iter_mut().zip(row).zip(ln.gamma.iter().zip(&ln.beta)) {
            *o = (v - mean) * rs * g + b;
        }
        if let Some((xhat, rstd)) = stats.as_mut() {
            rstd[i] = rs;
            for (x, &v) in xhat[i * d..(i + 1) * d].iter_mut().zip(row) {
                *x = (v - mean) * rs;
            }
        }
    }
}

/// Backward of layer norm: `out [+]= rstd·(γ⊙dy − mean(γ⊙dy) − x̂·mean(γ⊙dy⊙x̂))` per row.
#[inline(always)]
pub(super) fn layer_norm_backward(
    dy: &[f32],
    ln: &Ln,
    xhat: &[f32],
    rstd: &[f32],
    out: &mut [f32],
    d: usize,
    accumulate: bool,
) {
    let inv_d = 1.0 / d as f32;
    for (((g, xh), o), &rs) in dy
        .chunks_exact(d)
        .zip(xhat.chunks_exact(d))
        .zip(out.chunks_exact_mut(d))
        .zip(rstd)
    {
        let (gamma, d16) = (&ln.gamma[..d], d / 16 * 16);
        let (g, xh, o) = (&g[..d], &xh[..d], &mut o[..d]);
        let mut a1 = [0f32; 16];
        let mut a2 = [0f32; 16];
        for ((gc, xc), wc) in g[..d16]
            .chunks_exact(16)
            .zip(xh[..d16].chunks_exact(16))
            .zip(gamma[..d16].chunks_exact(16))
        {
            for k in 0..16 {
                let dx = gc[k] * wc[k];
                a1[k] += dx;
                a2[k] += dx * xc[k];
            }
        }
        let (mut s1, mut s2) = (a1.iter().sum::<f32>(), a2.iter().sum::<f32>());
        for ((&gv, &xv), &wv) in g[d16..].iter().zip(&xh[d16..]).zip(&gamma[d16..]) {
            let dx = gv * wv;
            s1 += dx;
            s2 += dx * xv;
        }
        let (m1, m2) = (s1 * inv_d, s2 * inv_d);
        let terms = o.iter_mut().zip(g).zip(xh).zip(gamma);
        if accumulate {
            for (((ov, &gv), &xv), &wv) in terms {
                *ov += rs * (gv * wv - m1 - xv * m2);
            }
        } else {
            for (((ov, &gv), &xv), &wv) in terms {
                *ov = rs * (gv * wv - m1 - xv * m2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Mode, Params, Track};
    use crate::rng::SplitMix64;
    use candle_core::{Device, Var};

    fn randn(n: usize, scale: f64, rng: &mut SplitMix64) -> Vec<f32> {
        (0..n).map(|_| (rng.next_normal() * scale) as f32).collect()
    }

    /// An encoder + head with every weight random (layer norms included), drop-path 1 so that
    /// "last block in train mode" always drops it.
    fn model(d: usize, depth: usize) -> (Encoder, Head) {
        let dev = Device::Cpu;
        let mut rng = SplitMix64::new(7);
        let mut p = Params::default();
        let enc = Encoder::new(&mut p, d, 48, depth, 24, 0.1, 1.0, 0.05, &mut rng, &dev).unwrap();
        let head = Head::new(&mut p, 24, &mut rng, &dev).unwrap();
        for (name, v) in &p.vars {
            if name.contains("ln") {
                let t = v.as_tensor();
                let shift = if name.ends_with("weight") { 1.0 } else { 0.0 };
                let vals: Vec<f32> = randn(t.elem_count(), 0.3, &mut rng)
                    .into_iter()
                    .map(|x| x + shift)
                    .collect();
                v.set(&Tensor::from_vec(vals, t.shape(), &dev).unwrap())
                    .unwrap();
            }
        }
        (enc, head)
    }

    /// ℓ₀ and ∇ₓ Σℓ₀ through candle's graph.
    fn candle_path(
        enc: &Encoder,
        head: &Head,
        x: &[f32],
        d: usize,
        last: Mode,
    ) -> (Vec<f32>, Vec<f32>) {
        let xv = Var::from_tensor(&Tensor::from_slice(x, (x.len() / d, d), &Device::Cpu).unwrap())
            .unwrap();
        let mut rng = SplitMix64::new(1);
        let z = enc
            .forward_t(xv.as_tensor(), Mode::Eval, last, Track::Nothing, &mut rng)
            .unwrap();
        let l0 = head
            .forward_t(&z, false)
            .unwrap()
            .narrow(1, 0, 1)
            .unwrap()
            .squeeze(1)
            .unwrap();
        let g = l0.sum_all().unwrap().backward().unwrap();
        let gx = g
            .get(xv.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        (l0.to_vec1().unwrap(), gx)
    }

    fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * scale,
                "{what}[{i}]: {x} vs {y} (scale {scale})"
            );
        }
    }

    #[test]
    fn logit_and_input_gradient_match_candles_graph() {
        let d = 19;
        for depth in [0, 1, 3] {
            let (enc, head) = model(d, depth);
            let net = FrozenNet::new(&enc, &head).unwrap();
            let mut ws = net.workspaces(3);
            // more rows than a chunk, and a ragged last chunk; rows of very different scale
            let rows = CHUNK * 2 + 37;
            let mut rng = SplitMix64::new(depth as u64);
            let x: Vec<f32> = randn(rows * d, 1.0, &mut rng)
                .into_iter()
                .enumerate()
                .map(|(i, v)| v * [0.1, 1.0, 30.0][(i / d) % 3])
                .collect();
            for (skip, last) in [(false, Mode::Eval), (true, Mode::Train)] {
                let (l_ref, g_ref) = candle_path(&enc, &head, &x, d, last);
                let mut l0 = vec![0f32; rows];
                net.logit0(&x, skip, &mut l0, &mut ws);
                assert_close(&l0, &l_ref, 1e-5, "logit");
                // the gradient, through a step of size 1 from x = 0 … read it off chunk by chunk
                let mut grads = Vec::new();
                let mut ls = Vec::new();
                for xc in x.chunks(CHUNK * d) {
                    let r = xc.len() / d;
                    let mut lc = vec![0f32; r];
                    net.chunk(&mut ws[0], xc, skip, &mut lc, true);
                    grads.extend_from_slice(&ws[0].grad[..r * d]);
                    ls.extend(lc);
                }
                assert_close(&ls, &l_ref, 1e-5, "logit with gradient");
                assert_close(&grads, &g_ref, 1e-4, "input gradient");
            }
        }
    }

    #[test]
    fn an_odin_step_moves_every_input_by_the_step_along_the_signs() {
        let d = 11;
        let (enc, head) = model(d, 2);
        let net = FrozenNet::new(&enc, &head).unwrap();
        let mut ws = net.workspaces(2);
        let rows = 70;
        let x = randn(rows * d, 2.0, &mut SplitMix64::new(3));
        let (l_ref, g_ref) = candle_path(&enc, &head, &x, d, Mode::Eval);
        let mut xt = x.clone();
        net.odin_step(&mut xt, false, 0.25, &mut ws);
        let mut checked = 0;
        for i in 0..rows {
            for j in 0..d {
                let g = g_ref[i * d + j];
                // where the gradient is ~0 its sign is rounding; skip those
                if g.abs() < 1e-5 {
                    continue;
                }
                let want = 0.25 * l_ref[i].signum() * g.signum();
                assert_eq!(xt[i * d + j], x[i * d + j] + want, "row {i} feature {j}");
                checked += 1;
            }
        }
        assert!(checked > rows * d / 2);
    }

    #[test]
    fn the_number_of_threads_changes_no_result() {
        let d = 13;
        let (enc, head) = model(d, 2);
        let net = FrozenNet::new(&enc, &head).unwrap();
        let rows = EVAL_CHUNK * 2 + CHUNK + 5;
        let x = randn(rows * d, 3.0, &mut SplitMix64::new(9));
        let run = |threads: usize| {
            let mut ws = net.workspaces(threads);
            let mut xt = x.clone();
            net.odin_step(&mut xt, true, 0.01, &mut ws);
            let mut l0 = vec![0f32; rows];
            net.logit0(&xt, false, &mut l0, &mut ws);
            let mut scored = vec![0f32; rows];
            net.odin_logit0(&x, 2, 0.001, 0.99, 0.01, &mut scored, &mut ws);
            (xt, l0, scored)
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(5));
        // and the eval path is the step-by-step path
        let mut ws = net.workspaces(1);
        let mut xt = x.clone();
        net.odin_step(&mut xt, false, 0.001, &mut ws);
        net.odin_step(&mut xt, false, 0.001, &mut ws);
        for (v, &o) in xt.iter_mut().zip(&x) {
            *v = *v * 0.99 + o * 0.01;
        }
        let mut l0 = vec![0f32; rows];
        net.logit0(&xt, false, &mut l0, &mut ws);
        let close = l0
            .iter()
            .zip(&one.2)
            .all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs()));
        assert!(close, "odin_logit0 differs from odin_step + logit0");
    }

    #[test]
    fn the_vectorised_copy_computes_the_baseline_copys_numbers() {
        let d = 21;
        let (enc, head) = model(d, 3);
        let net = FrozenNet::new(&enc, &head).unwrap();
        let x = randn(CHUNK * d, 2.0, &mut SplitMix64::new(4));
        let (mut wa, mut wb) = (net.workspace(), net.workspace());
        let (mut la, mut lb) = (vec![0f32; CHUNK], vec![0f32; CHUNK]);
        net.chunk(&mut wa, &x, false, &mut la, true); // the CPU's widest copy
        net.chunk_body(&mut wb, &x, false, &mut lb, true); // baseline x86-64
        assert_eq!(la, lb);
        assert_eq!(wa.grad, wb.grad);
    }

    #[test]
    fn the_exp_approximation_is_within_2_ulp_on_its_range() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -(i as f32) * 4.35e-4; // 0 … −87
            let (a, b) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max((a - b).abs() / b);
        }
        assert!(worst < 2.5e-7, "relative error {worst}");
        assert_eq!(exp(-1000.0), exp(-87.0));
        // outside the domain: clamped, never an out-of-range exponent
        assert_eq!(exp(f32::NAN), exp(-87.0));
        assert_eq!(exp(f32::NEG_INFINITY), exp(-87.0));
        assert_eq!(exp(3.0), 1.0);
    }
}
