//! One inner-stage training pass on the CPU without candle's graph: the forward pass in train
//! mode (feature dropout, drop-path, dropout), `BCE(ℓ₀, y) + λ·MSE(dec(z), x)` and the gradient
//! of that loss for every weight of encoder, head and decoder.
//!
//! Through candle an inner step was ~300 allocating tensor ops, and its backward pass ran at a
//! third of the forward pass's speed (`heldout bench episode`: 4.6 ms forward, 14.5 ms
//! backward for 256 rows). Here it is one pass each way, in blocks of rows on all cores, with
//! the products on `gemm`. The random draws are candle's, in candle's order (feature-dropout
//! mask row by row, one drop-path draw per block, dropout mask), so a seed gives the same masks
//! either way; the arithmetic agrees to float rounding (tested against candle's gradients here
//! and against the PyTorch reference's in `detect::meta::step_tests`).

use super::frozen::{
    affine, gelu, gemm_checked, layer_norm, layer_norm_backward, matmul_wt, mul_assign, par_map,
    simd_method, threads, Lin, Ln,
};
use super::layers::{Decoder, Encoder, Head, ResBlock};
use crate::rng::SplitMix64;
use candle_core::{bail, Result};

struct Blk {
    name: String,
    ln1: Ln,
    l1: Lin,
    ln2: Ln,
    l2: Lin,
    drop_path: f64,
}

impl Blk {
    fn of(b: &ResBlock, name: String) -> Result<Self> {
        Ok(Blk {
            name,
            ln1: Ln::of(&b.ln1)?,
            l1: Lin::of(&b.l1)?,
            ln2: Ln::of(&b.ln2)?,
            l2: Lin::of(&b.l2)?,
            drop_path: b.drop_path,
        })
    }
}

/// The residual blocks of an encoder or decoder, named `{prefix}.block{i}` like the parameters.
fn blocks_of(bs: &[ResBlock], prefix: &str) -> Result<Vec<Blk>> {
    bs.iter()
        .enumerate()
        .map(|(i, b)| Blk::of(b, format!("{prefix}.block{i}")))
        .collect()
}

/// Whether every block maps width `w` to width `w`.
fn square(bs: &[Blk], w: usize) -> bool {
    bs.iter()
        .all(|b| b.l1.d_in == w && b.l1.d_out == w && b.l2.d_in == w && b.l2.d_out == w)
}

/// What the head's forward pass keeps for its backward pass.
struct HeadAct {
    /// GELU(LN(z)), the output layer's input.
    v: Vec<f32>,
    xhat: Vec<f32>,
    rstd: Vec<f32>,
    /// GELU's derivative at LN(z).
    dg: Vec<f32>,
}

/// The head `Linear(GELU(LN(z)))` on `rows` rows of `z`: what it keeps, and both logits.
#[inline(always)]
fn head_forward(ln: &Ln, out: &Lin, z: &[f32], rows: usize) -> (HeadAct, Vec<f32>) {
    let w = out.d_in;
    let mut a = HeadAct {
        v: vec![0f32; rows * w],
        xhat: vec![0f32; rows * w],
        rstd: vec![0f32; rows],
        dg: vec![0f32; rows * w],
    };
    layer_norm(z, &mut a.v, w, ln, Some((&mut a.xhat, &mut a.rstd)));
    gelu(&mut a.v, Some(&mut a.dg));
    let mut logits = vec![0f32; rows * out.d_out];
    affine(&mut logits, &a.v, out, rows);
    (a, logits)
}

/// Backward of [`head_forward`] for a loss whose gradient at the normal logit ℓ₀ is `dl0` (the
/// other logit does not enter): the head's gradients, and its input gradient added to `dz`.
#[inline(always)]
fn head_backward(
    grads: &mut Vec<(String, Vec<f32>)>,
    ln: &Ln,
    out: &Lin,
    a: &HeadAct,
    dl0: &[f32],
    dz: &mut [f32],
) {
    let (w, rows) = (out.d_in, dl0.len());
    let mut dlogits = vec![0f32; rows * 2];
    for (o, &g) in dlogits.chunks_exact_mut(2).zip(dl0) {
        o[0] = g;
    }
    linear_backward(grads, "head.out", out, &a.v, &dlogits, rows);
    let mut dv = vec![0f32; rows * w];
    for ((row, dg), &g) in dv.chunks_exact_mut(w).zip(a.dg.chunks_exact(w)).zip(dl0) {
        for ((o, &dgj), wv) in row.iter_mut().zip(dg).zip(out.w.chunks_exact(2)) {
            *o = g * wv[0] * dgj;
        }
    }
    layer_norm_backward_params(grads, "head.ln", &dv, ln, &a.xhat, &a.rstd, dz, w);
}

/// What one block's forward pass keeps for its backward pass.
struct BlkAct {
    xhat1: Vec<f32>,
    rstd1: Vec<f32>,
    dg1: Vec<f32>,
    g1: Vec<f32>,
    xhat2: Vec<f32>,
    rstd2: Vec<f32>,
    dg2: Vec<f32>,
    g2: Vec<f32>,
}

/// A snapshot of the encoder, head and decoder weights for one training pass.
pub struct InnerNet {
    enc_in: Lin,
    enc_blocks: Vec<Blk>,
    enc_out: Lin,
    head_ln: Ln,
    head_out: Lin,
    dec_in: Lin,
    dec_blocks: Vec<Blk>,
    dec_out: Lin,
    feature_dropout: f64,
    dropout: f64,
}

/// Rows per block of the inner pass: blocks run on all cores and their losses and gradients are
/// summed in block order, so the number of threads changes no result.
const INNER_BLOCK: usize = 128;

/// One block of rows of an inner pass, with its masks.
struct RowBlock<'a> {
    x: &'a [f32],
    /// `x` after feature dropout.
    xin: &'a [f32],
    y: Option<&'a [f32]>,
    dmask: Option<&'a [f32]>,
    /// Drop-path of each encoder block (the same for every row: whole-batch).
    drops: &'a [bool],
    total_rows: usize,
    lambda_rec: f64,
}

/// A block's BCE sum, squared-error sum and gradients.
type BlockSums = (f64, f64, Vec<(String, Vec<f32>)>);

/// Loss and gradients of one pass; gradients named like the model's parameters.
pub struct InnerPass {
    /// `BCE + λ·MSE`.
    pub loss: f64,
    pub grads: Vec<(String, Vec<f32>)>,
}

impl InnerNet {
    /// Copies the current weights.
    pub fn new(enc: &Encoder, head: &Head, dec: &Decoder) -> Result<Self> {
        let net = InnerNet {
            enc_in: Lin::of(&enc.input)?,
            enc_blocks: blocks_of(&enc.blocks, "enc")?,
            enc_out: Lin::of(&enc.output)?,
            head_ln: Ln::of(&head.ln)?,
            head_out: Lin::of(&head.out)?,
            dec_in: Lin::of(&dec.input)?,
            dec_blocks: blocks_of(&dec.blocks, "dec")?,
            dec_out: Lin::of(&dec.output)?,
            feature_dropout: enc.feature_dropout,
            dropout: enc.dropout,
        };
        let (h, hd) = (net.enc_in.d_out, net.dec_in.d_out);
        if !square(&net.enc_blocks, h)
            || !square(&net.dec_blocks, hd)
            || net.enc_out.d_in != h
            || net.head_out.d_in != net.enc_out.d_out
            || net.head_out.d_out != 2
            || net.dec_in.d_in != net.enc_out.d_out
            || net.dec_out.d_in != hd
            || net.dec_out.d_out != net.enc_in.d_in
        {
            bail!("inner net: layer sizes do not fit together");
        }
        Ok(net)
    }

    /// One pass over the rows `x` (rows × D) with targets `y` for ℓ₀ (all 1 when `None`),
    /// drawing masks from `rng` like the candle path.
    pub fn pass(
        &self,
        x: &[f32],
        targets: Option<&[f32]>,
        lambda_rec: f64,
        rng: &mut SplitMix64,
    ) -> Result<InnerPass> {
        self.pass_on(x, targets, lambda_rec, rng, threads())
    }

    /// [`InnerNet::pass`] on up to `threads` threads.
    fn pass_on(
        &self,
        x: &[f32],
        targets: Option<&[f32]>,
        lambda_rec: f64,
        rng: &mut SplitMix64,
        threads: usize,
    ) -> Result<InnerPass> {
        let d = self.enc_in.d_in;
        let h = self.enc_in.d_out;
        let rows = x.len() / d.max(1);
        if rows == 0 || x.len() != rows * d || targets.is_some_and(|t| t.len() != rows) {
            bail!("inner net: {} values for rows of {d}", x.len());
        }
        // The draws, all of them first and in the candle path's order: the feature-dropout mask
        // row by row, one drop-path draw per block, the dropout mask.
        let xin: Vec<f32> = if self.feature_dropout > 0.0 {
            let p = self.feature_dropout;
            x.iter()
                .map(|&v| v * if rng.next_f64() < p { 0.0 } else { 1.0 })
                .collect()
        } else {
            x.to_vec()
        };
        let drops: Vec<bool> = self
            .enc_blocks
            .iter()
            .map(|b| b.drop_path > 0.0 && rng.next_f64() < b.drop_path)
            .collect();
        let dmask: Option<Vec<f32>> = (self.dropout > 0.0).then(|| {
            let (p, scale) = (self.dropout, (1.0 / (1.0 - self.dropout)) as f32);
            (0..rows * h)
                .map(|_| if rng.next_f64() < p { 0.0 } else { scale })
                .collect()
        });
        // Row blocks on all cores; losses and gradients summed in block order.
        let blocks = rows.div_ceil(INNER_BLOCK);
        let parts = par_map(threads, blocks, |i| {
            let r = i * INNER_BLOCK..((i + 1) * INNER_BLOCK).min(rows);
            let rb = RowBlock {
                x: &x[r.start * d..r.end * d],
                xin: &xin[r.start * d..r.end * d],
                y: targets.map(|t| &t[r.clone()]),
                dmask: dmask.as_ref().map(|m| &m[r.start * h..r.end * h]),
                drops: &drops,
                total_rows: rows,
                lambda_rec,
            };
            self.rows_pass(&rb)
        });
        let mut parts = parts.into_iter();
        let Some(first) = parts.next() else {
            bail!("inner net: no rows");
        };
        let (mut bce, mut rec, mut grads) = first;
        for (b, r, g) in parts {
            bce += b;
            rec += r;
            for ((_, acc), (_, part)) in grads.iter_mut().zip(g) {
                for (a, v) in acc.iter_mut().zip(part) {
                    *a += v;
                }
            }
        }
        let loss = bce / rows as f64 + lambda_rec * rec / (rows * d) as f64;
        Ok(InnerPass { loss, grads })
    }

    simd_method! {
        /// [`InnerNet::rows_body`] compiled for the CPU's vector width, subnormals flushed.
        fn rows_pass(&self, rb: &RowBlock) -> BlockSums => InnerNet, rows_body
    }

    /// One block of rows, forward and backward with the masks drawn: the sums of its BCE and
    /// squared-error terms and its share of the gradients (scaled for the whole batch); see
    /// `simd_method!`.
    #[inline(always)]
    fn rows_body(&self, rb: &RowBlock) -> BlockSums {
        let d = self.enc_in.d_in;
        let (h, z, hd) = (self.enc_in.d_out, self.enc_out.d_out, self.dec_in.d_out);
        let (x, xin, targets) = (rb.x, rb.xin, rb.y);
        let rows = x.len() / d.max(1);
        let zeros = |n: usize| vec![0f32; n];

        // ---- forward: encoder (train mode, masks given)
        let mut hcur = zeros(rows * h);
        affine(&mut hcur, xin, &self.enc_in, rows);
        let mut dg0 = zeros(rows * h);
        gelu(&mut hcur, Some(&mut dg0));
        let mut enc_acts = Vec::with_capacity(self.enc_blocks.len());
        for (b, &dropped) in self.enc_blocks.iter().zip(rb.drops) {
            if dropped {
                enc_acts.push(None);
            } else {
                enc_acts.push(Some(block_forward(b, &mut hcur, rows, h)));
            }
        }
        let dmask = rb.dmask;
        if let Some(m) = dmask {
            mul_assign(&mut hcur, m);
        }
        let mut zb = zeros(rows * z);
        affine(&mut zb, &hcur, &self.enc_out, rows);

        let (head, logits) = head_forward(&self.head_ln, &self.head_out, &zb, rows);

        // decoder (its blocks have no drop-path)
        let mut hdec = zeros(rows * hd);
        affine(&mut hdec, &zb, &self.dec_in, rows);
        let mut ddg0 = zeros(rows * hd);
        gelu(&mut hdec, Some(&mut ddg0));
        // A plain loop, not `.map(…).collect()`: the iterator's `fold` can stay out of line,
        // compiled without this copy's AVX-512/FMA features (seen in `perf`: the decoder blocks
        // then ran in a baseline `Map::fold`, and the inner step took 11 ms instead of 8).
        let mut dec_acts: Vec<BlkAct> = Vec::with_capacity(self.dec_blocks.len());
        for b in &self.dec_blocks {
            dec_acts.push(block_forward(b, &mut hdec, rows, hd));
        }
        let mut recon = zeros(rows * d);
        affine(&mut recon, &hdec, &self.dec_out, rows);

        // ---- loss terms: BCE on ℓ₀, squared reconstruction error; gradients of the batch means
        let y = |r: usize| targets.map_or(1.0, |t| t[r]);
        let mut bce = 0f64;
        let mut dl0 = zeros(rows);
        for r in 0..rows {
            let l = logits[r * 2] as f64;
            let yr = y(r) as f64;
            bce += l.max(0.0) - l * yr + (-l.abs()).exp().ln_1p();
            dl0[r] = ((1.0 / (1.0 + (-l).exp()) - yr) / rb.total_rows as f64) as f32;
        }
        let mut rec = 0f64;
        let c = (2.0 * rb.lambda_rec / (rb.total_rows * d) as f64) as f32;
        let drecon: Vec<f32> = recon
            .iter()
            .zip(x)
            .map(|(&o, &t)| {
                let e = o - t;
                rec += (e as f64) * (e as f64);
                c * e
            })
            .collect();

        // ---- backward
        let mut grads: Vec<(String, Vec<f32>)> = Vec::new();
        // decoder
        let mut dhd = zeros(rows * hd);
        linear_backward(
            &mut grads,
            "dec.output",
            &self.dec_out,
            &hdec,
            &drecon,
            rows,
        );
        matmul_wt(&mut dhd, &drecon, &self.dec_out, rows, 1.0);
        for (b, act) in self.dec_blocks.iter().zip(&dec_acts).rev() {
            block_backward(&mut grads, b, Some(act), &mut dhd, rows, hd);
        }
        mul_assign(&mut dhd, &ddg0);
        linear_backward(&mut grads, "dec.input", &self.dec_in, &zb, &dhd, rows);
        let mut dz = zeros(rows * z);
        matmul_wt(&mut dz, &dhd, &self.dec_in, rows, 1.0);
        head_backward(
            &mut grads,
            &self.head_ln,
            &self.head_out,
            &head,
            &dl0,
            &mut dz,
        );
        // encoder
        linear_backward(&mut grads, "enc.output", &self.enc_out, &hcur, &dz, rows);
        let mut dh = zeros(rows * h);
        matmul_wt(&mut dh, &dz, &self.enc_out, rows, 1.0);
        if let Some(m) = dmask {
            mul_assign(&mut dh, m);
        }
        for (b, act) in self.enc_blocks.iter().zip(&enc_acts).rev() {
            block_backward(&mut grads, b, act.as_ref(), &mut dh, rows, h);
        }
        mul_assign(&mut dh, &dg0);
        linear_backward(&mut grads, "enc.input", &self.enc_in, xin, &dh, rows);
        (bce, rec, grads)
    }
}

/// A snapshot of the encoder and head weights for the outer stage's pass A: the encoder in eval
/// mode up to its last block, the last block in train mode (drop-path), output layer and head;
/// gradients for the parameters the outer stage trains (last block and head) of any weighting
/// of the normal logits.
pub struct OuterNet {
    enc_in: Lin,
    blocks: Vec<Blk>,
    enc_out: Lin,
    head_ln: Ln,
    head_out: Lin,
}

/// What [`OuterNet::forward`] keeps for [`OuterNet::backward`].
pub struct OuterAct {
    rows: usize,
    /// ℓ₀ of every row.
    pub l0: Vec<f32>,
    last: Option<BlkAct>,
    head: HeadAct,
}

impl OuterNet {
    /// Copies the current weights.
    pub fn new(enc: &Encoder, head: &Head) -> Result<Self> {
        let net = OuterNet {
            enc_in: Lin::of(&enc.input)?,
            blocks: blocks_of(&enc.blocks, "enc")?,
            enc_out: Lin::of(&enc.output)?,
            head_ln: Ln::of(&head.ln)?,
            head_out: Lin::of(&head.out)?,
        };
        let h = net.enc_in.d_out;
        if !square(&net.blocks, h)
            || net.enc_out.d_in != h
            || net.head_out.d_in != net.enc_out.d_out
            || net.head_out.d_out != 2
        {
            bail!("outer net: layer sizes do not fit together");
        }
        Ok(net)
    }

    simd_method! {
        /// Forward pass of the rows `x`; with `skip_last` the last block is dropped (drop-path).
        pub fn forward(&self, x: &[f32], skip_last: bool) -> Result<OuterAct> => OuterNet, forward_body
    }

    #[inline(always)]
    fn forward_body(&self, x: &[f32], skip_last: bool) -> Result<OuterAct> {
        let d = self.enc_in.d_in;
        let (h, z) = (self.enc_in.d_out, self.enc_out.d_out);
        let rows = x.len() / d.max(1);
        if x.len() != rows * d {
            bail!("outer net: {} values for rows of {d}", x.len());
        }
        let mut hcur = vec![0f32; rows * h];
        affine(&mut hcur, x, &self.enc_in, rows);
        gelu(&mut hcur, None);
        let n = self.blocks.len();
        for b in &self.blocks[..n.saturating_sub(1)] {
            block_forward(b, &mut hcur, rows, h);
        }
        let last = match self.blocks.last() {
            Some(b) if !skip_last => Some(block_forward(b, &mut hcur, rows, h)),
            _ => None,
        };
        let mut zb = vec![0f32; rows * z];
        affine(&mut zb, &hcur, &self.enc_out, rows);
        let (head, logits) = head_forward(&self.head_ln, &self.head_out, &zb, rows);
        Ok(OuterAct {
            rows,
            l0: logits.chunks_exact(2).map(|l| l[0]).collect(),
            last,
            head,
        })
    }

    simd_method! {
        /// Gradients of `Σ_r dl0[r]·ℓ₀[r]` for the head's and the last block's parameters (named
        /// like the model's; the last block's are zero when it was dropped).
        pub fn backward(&self, act: &OuterAct, dl0: &[f32]) -> Result<Vec<(String, Vec<f32>)>>
            => OuterNet, backward_body
    }

    #[inline(always)]
    fn backward_body(&self, act: &OuterAct, dl0: &[f32]) -> Result<Vec<(String, Vec<f32>)>> {
        let rows = act.rows;
        if dl0.len() != rows {
            bail!("outer net: {} weights for {rows} rows", dl0.len());
        }
        let (h, z) = (self.enc_in.d_out, self.enc_out.d_out);
        let mut grads = Vec::new();
        let mut dz = vec![0f32; rows * z];
        head_backward(
            &mut grads,
            &self.head_ln,
            &self.head_out,
            &act.head,
            dl0,
            &mut dz,
        );
        if let Some(b) = self.blocks.last() {
            let mut dh = vec![0f32; rows * h];
            matmul_wt(&mut dh, &dz, &self.enc_out, rows, 1.0);
            block_backward(&mut grads, b, act.last.as_ref(), &mut dh, rows, h);
        }
        Ok(grads)
    }
}

/// `h ← h + 0.5·W₂·GELU(LN₂(W₁·GELU(LN₁(h))))`, keeping what the backward pass needs.
#[inline(always)]
fn block_forward(b: &Blk, h: &mut [f32], rows: usize, w: usize) -> BlkAct {
    let n = rows * w;
    let mut act = BlkAct {
        xhat1: vec![0f32; n],
        rstd1: vec![0f32; rows],
        dg1: vec![0f32; n],
        g1: vec![0f32; n],
        xhat2: vec![0f32; n],
        rstd2: vec![0f32; rows],
        dg2: vec![0f32; n],
        g2: vec![0f32; n],
    };
    layer_norm(
        h,
        &mut act.g1,
        w,
        &b.ln1,
        Some((&mut act.xhat1, &mut act.rstd1)),
    );
    gelu(&mut act.g1, Some(&mut act.dg1));
    let mut a = vec![0f32; n];
    affine(&mut a, &act.g1, &b.l1, rows);
    layer_norm(
        &a,
        &mut act.g2,
        w,
        &b.ln2,
        Some((&mut act.xhat2, &mut act.rstd2)),
    );
    gelu(&mut act.g2, Some(&mut act.dg2));
    affine(&mut a, &act.g2, &b.l2, rows);
    for (hv, &av) in h.iter_mut().zip(&a) {
        *hv += av * 0.5;
    }
    act
}

/// Backward of [`block_forward`] with `dh` the gradient at the block's output (overwritten with
/// the gradient at its input). A dropped block (`act` None) passes `dh` through and gets zero
/// gradients, as when it is not in candle's graph.
#[inline(always)]
fn block_backward(
    grads: &mut Vec<(String, Vec<f32>)>,
    b: &Blk,
    act: Option<&BlkAct>,
    dh: &mut [f32],
    rows: usize,
    w: usize,
) {
    let name = |part: &str, p: &str| format!("{}.{part}.{p}", b.name);
    let Some(act) = act else {
        for (part, n_w) in [("ln1", 0), ("fc1", w * w), ("ln2", 0), ("fc2", w * w)] {
            let (wn, bn) = if n_w == 0 { (w, w) } else { (n_w, w) };
            grads.push((name(part, "weight"), vec![0f32; wn]));
            grads.push((name(part, "bias"), vec![0f32; bn]));
        }
        return;
    };
    let n = rows * w;
    // second linear, its input gradient scaled by the residual's 0.5
    let (mut gw, mut gb) = (vec![0f32; w * w], vec![0f32; w]);
    gemm_checked(&mut gw, &act.g2, dh, w, rows, w, true, false, 0.5, false);
    col_sums(&mut gb, dh, w, 0.5);
    let mut t = vec![0f32; n];
    matmul_wt(&mut t, dh, &b.l2, rows, 0.5);
    mul_assign(&mut t, &act.dg2);
    let mut da1 = vec![0f32; n];
    let (mut lg2, mut lb2) = (vec![0f32; w], vec![0f32; w]);
    ln_param_grads(&mut lg2, &mut lb2, &t, &act.xhat2, w);
    layer_norm_backward(&t, &b.ln2, &act.xhat2, &act.rstd2, &mut da1, w, false);
    // first linear
    let (mut gw1, mut gb1) = (vec![0f32; w * w], vec![0f32; w]);
    gemm_checked(&mut gw1, &act.g1, &da1, w, rows, w, true, false, 1.0, false);
    col_sums(&mut gb1, &da1, w, 1.0);
    matmul_wt(&mut t, &da1, &b.l1, rows, 1.0);
    mul_assign(&mut t, &act.dg1);
    let (mut lg1, mut lb1) = (vec![0f32; w], vec![0f32; w]);
    ln_param_grads(&mut lg1, &mut lb1, &t, &act.xhat1, w);
    layer_norm_backward(&t, &b.ln1, &act.xhat1, &act.rstd1, dh, w, true);
    grads.push((name("ln1", "weight"), lg1));
    grads.push((name("ln1", "bias"), lb1));
    grads.push((name("fc1", "weight"), gw1));
    grads.push((name("fc1", "bias"), gb1));
    grads.push((name("ln2", "weight"), lg2));
    grads.push((name("ln2", "bias"), lb2));
    grads.push((name("fc2", "weight"), gw));
    grads.push((name("fc2", "bias"), gb));
}

/// Weight and bias gradients of `y = x·W + b` given `dy`.
#[inline(always)]
fn linear_backward(
    grads: &mut Vec<(String, Vec<f32>)>,
    name: &str,
    l: &Lin,
    x: &[f32],
    dy: &[f32],
    rows: usize,
) {
    let mut gw = vec![0f32; l.d_in * l.d_out];
    gemm_checked(
        &mut gw, x, dy, l.d_in, rows, l.d_out, true, false, 1.0, false,
    );
    let mut gb = vec![0f32; l.d_out];
    col_sums(&mut gb, dy, l.d_out, 1.0);
    grads.push((format!("{name}.weight"), gw));
    grads.push((format!("{name}.bias"), gb));
}

/// Layer norm's γ, β gradients and (accumulated into `dx`) its input gradient.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn layer_norm_backward_params(
    grads: &mut Vec<(String, Vec<f32>)>,
    name: &str,
    dy: &[f32],
    ln: &Ln,
    xhat: &[f32],
    rstd: &[f32],
    dx: &mut [f32],
    w: usize,
) {
    let (mut lg, mut lb) = (vec![0f32; w], vec![0f32; w]);
    ln_param_grads(&mut lg, &mut lb, dy, xhat, w);
    layer_norm_backward(dy, ln, xhat, rstd, dx, w, true);
    grads.push((format!("{name}.weight"), lg));
    grads.push((format!("{name}.bias"), lb));
}

/// `dγ = Σ_rows dy ⊙ x̂`, `dβ = Σ_rows dy`.
#[inline(always)]
fn ln_param_grads(dgamma: &mut [f32], dbeta: &mut [f32], dy: &[f32], xhat: &[f32], w: usize) {
    for (g, xh) in dy.chunks_exact(w).zip(xhat.chunks_exact(w)) {
        for (((a, b), &gv), &xv) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(g).zip(xh) {
            *a += gv * xv;
            *b += gv;
        }
    }
}

/// `dst = scale · Σ_rows src`.
#[inline(always)]
fn col_sums(dst: &mut [f32], src: &[f32], w: usize, scale: f32) {
    for row in src.chunks_exact(w) {
        for (a, &v) in dst.iter_mut().zip(row) {
            *a += v;
        }
    }
    if scale != 1.0 {
        for a in dst.iter_mut() {
            *a *= scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{bce_with_logit_targets, Mode, Params, Track};
    use candle_core::{Device, Tensor};

    fn randn(n: usize, scale: f64, rng: &mut SplitMix64) -> Vec<f32> {
        (0..n).map(|_| (rng.next_normal() * scale) as f32).collect()
    }

    /// The normal logit ℓ₀ of candle's head on `z`.
    fn candle_l0(head: &Head, z: &Tensor) -> Tensor {
        head.forward(z)
            .unwrap()
            .narrow(1, 0, 1)
            .unwrap()
            .squeeze(1)
            .unwrap()
    }

    /// Loss and named gradients through candle's graph, drawing from `rng`.
    fn candle_pass(
        p: &Params,
        (enc, head, dec): (&Encoder, &Head, &Decoder),
        x: &[f32],
        y: &[f32],
        d: usize,
        rng: &mut SplitMix64,
    ) -> (f64, Vec<(String, Vec<f32>)>) {
        let dev = Device::Cpu;
        let rows = x.len() / d;
        let xt = Tensor::from_slice(x, (rows, d), &dev).unwrap();
        let z = enc
            .forward_t(&xt, Mode::Train, Mode::Train, Track::All, rng)
            .unwrap();
        let l0 = candle_l0(head, &z);
        let recon = dec.forward(&z, rng).unwrap();
        let yt = Tensor::from_slice(y, rows, &dev).unwrap();
        let bce = bce_with_logit_targets(&l0, &yt).unwrap();
        let rec = (recon - &xt).unwrap().sqr().unwrap().mean_all().unwrap();
        let loss = (bce + (rec * 0.1).unwrap()).unwrap();
        let g = loss.backward().unwrap();
        let grads = p
            .vars
            .iter()
            .map(|(n, v)| {
                let t = g
                    .get(v.as_tensor())
                    .cloned()
                    .unwrap_or_else(|| v.as_tensor().zeros_like().unwrap());
                (n.clone(), t.flatten_all().unwrap().to_vec1().unwrap())
            })
            .collect();
        (loss.to_scalar::<f32>().unwrap() as f64, grads)
    }

    #[test]
    fn loss_gradients_and_draws_match_candles_graph() {
        let dev = Device::Cpu;
        let d = 17;
        // dropout, feature dropout and drop-path all on, so that masks and draw order count
        for (drop_path, seed) in [(0.5, 1u64), (0.5, 2), (0.0, 3)] {
            let mut init = SplitMix64::new(seed);
            let mut p = Params::default();
            let enc =
                Encoder::new(&mut p, d, 32, 3, 16, 0.3, drop_path, 0.2, &mut init, &dev).unwrap();
            let head = Head::new(&mut p, 16, &mut init, &dev).unwrap();
            let dec = Decoder::new(&mut p, 16, 24, 2, d, &mut init, &dev).unwrap();
            let rows = 150;
            let x = randn(rows * d, 2.0, &mut init);
            let y: Vec<f32> = (0..rows).map(|i| (i % 3 == 0) as u8 as f32).collect();
            let mut r1 = SplitMix64::new(seed + 10);
            let mut r2 = SplitMix64::new(seed + 10);
            let (loss_ref, g_ref) = candle_pass(&p, (&enc, &head, &dec), &x, &y, d, &mut r1);
            let net = InnerNet::new(&enc, &head, &dec).unwrap();
            let out = net.pass(&x, Some(&y), 0.1, &mut r2).unwrap();
            assert_eq!(r1.next_u64(), r2.next_u64(), "different number of draws");
            assert!(
                (out.loss - loss_ref).abs() < 1e-5 * loss_ref.abs().max(1.0),
                "loss {} vs {loss_ref}",
                out.loss
            );
            assert_eq!(out.grads.len(), g_ref.len());
            for (name, want) in &g_ref {
                let got = &out
                    .grads
                    .iter()
                    .find(|(n, _)| n == name)
                    .unwrap_or_else(|| panic!("no gradient for {name}"))
                    .1;
                assert_eq!(got.len(), want.len(), "{name}");
                let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                for (i, (a, b)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (a - b).abs() <= 2e-4 * scale,
                        "{name}[{i}]: {a} vs {b} (scale {scale})"
                    );
                }
            }
        }
    }

    #[test]
    fn outer_gradients_match_candles_graph() {
        let dev = Device::Cpu;
        let d = 9;
        // drop-path 1: "train mode" always drops the last block; eval mode never does
        for (last, skip) in [(Mode::Eval, false), (Mode::Train, true)] {
            let mut init = SplitMix64::new(4);
            let mut p = Params::default();
            let enc = Encoder::new(&mut p, d, 24, 3, 12, 0.3, 1.0, 0.2, &mut init, &dev).unwrap();
            let head = Head::new(&mut p, 12, &mut init, &dev).unwrap();
            let rows = 40;
            let x = randn(rows * d, 1.5, &mut init);
            let w = randn(rows, 1.0, &mut init);
            // candle: Σ w·ℓ₀ with the encoder in eval mode and its last block in mode `last`
            let xt = Tensor::from_slice(&x, (rows, d), &dev).unwrap();
            let mut rng = SplitMix64::new(0);
            let z = enc
                .forward_t(&xt, Mode::Eval, last, Track::LastBlock, &mut rng)
                .unwrap();
            let l0 = candle_l0(&head, &z);
            let wt = Tensor::from_slice(&w, rows, &dev).unwrap();
            let g = (l0.clone() * wt)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let net = OuterNet::new(&enc, &head).unwrap();
            let act = net.forward(&x, skip).unwrap();
            let l_ref: Vec<f32> = l0.to_vec1().unwrap();
            for (a, b) in act.l0.iter().zip(&l_ref) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "ℓ₀ {a} vs {b}");
            }
            let grads = net.backward(&act, &w).unwrap();
            // the head and the last block, nothing else
            assert_eq!(grads.len(), 4 + 8);
            for (name, got) in &grads {
                let var = &p.vars.iter().find(|(n, _)| n == name).unwrap().1;
                let want: Vec<f32> = match g.get(var.as_tensor()) {
                    Some(t) => t.flatten_all().unwrap().to_vec1().unwrap(),
                    None => vec![0.0; got.len()],
                };
                assert!(
                    name.starts_with("head.") || name.starts_with("enc.block2."),
                    "{name}"
                );
                let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() <= 2e-4 * scale, "{name}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn the_number_of_threads_changes_no_result() {
        let dev = Device::Cpu;
        let d = 11;
        let mut init = SplitMix64::new(8);
        let mut p = Params::default();
        let enc = Encoder::new(&mut p, d, 32, 3, 16, 0.3, 0.2, 0.2, &mut init, &dev).unwrap();
        let head = Head::new(&mut p, 16, &mut init, &dev).unwrap();
        let dec = Decoder::new(&mut p, 16, 24, 2, d, &mut init, &dev).unwrap();
        let net = InnerNet::new(&enc, &head, &dec).unwrap();
        // four row blocks, the last one short
        let rows = INNER_BLOCK * 3 + 50;
        let x = randn(rows * d, 1.0, &mut init);
        let run = |threads: usize| {
            let out = net
                .pass_on(&x, None, 0.1, &mut SplitMix64::new(1), threads)
                .unwrap();
            (out.loss, out.grads)
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(4));
    }

    #[test]
    fn mismatched_shapes_are_an_error_not_a_panic() {
        let dev = Device::Cpu;
        let mut init = SplitMix64::new(0);
        let mut p = Params::default();
        let enc = Encoder::new(&mut p, 5, 8, 1, 4, 0.0, 0.0, 0.0, &mut init, &dev).unwrap();
        let head = Head::new(&mut p, 4, &mut init, &dev).unwrap();
        let dec = Decoder::new(&mut p, 4, 8, 1, 5, &mut init, &dev).unwrap();
        let net = InnerNet::new(&enc, &head, &dec).unwrap();
        let mut rng = SplitMix64::new(0);
        assert!(net.pass(&[0.0; 7], None, 0.1, &mut rng).is_err());
        assert!(net.pass(&[0.0; 10], Some(&[1.0]), 0.1, &mut rng).is_err());
        assert!(net.pass(&[0.0; 10], None, 0.1, &mut rng).is_ok());
    }
}
