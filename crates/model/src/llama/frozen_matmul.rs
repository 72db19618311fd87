//! The frozen matmul: `x · wᵀ` for a weight that needs no gradient, in f32 or, given the
//! weight's bf16 packing (`bf16::PackedWeight`, built once per run), in bf16 both ways.
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};

use crate::{
    bf16::PackedWeight,
    kernels::{View, from_vec, gemm_new, last_dim, slice, with_data},
};

/// `x [.., in] · wᵀ` for a frozen `w [out, in]`: backward yields the input gradient only. candle's
/// matmul backward would also compute the weight's gradient (a GEMM as large as the forward
/// one) that nobody reads. Both directions call the GEMM kernel on the tensors' memory directly,
/// with no copy in or out.
pub fn frozen_matmul(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    frozen_matmul_packed(x, w, None)
}

/// `frozen_matmul` with the bf16 kernel when `packed` (the packing of `w`) is given.
pub fn frozen_matmul_packed(x: &Tensor, w: &Tensor, packed: Option<&Arc<PackedWeight>>) -> Result<Tensor> {
    let (out, inp) = w.dims2()?;
    if packed.is_some_and(|p| p.dims() != (out, inp)) {
        bail!("frozen matmul: bf16 packing does not match weight {:?}", w.dims())
    }
    if last_dim(x.layout()) != inp {
        bail!("frozen matmul: input last dim {} != weight in-features {inp}", last_dim(x.layout()))
    }
    let y = x.contiguous()?.apply_op1(FrozenMatmulOp { w: w.contiguous()?, packed: packed.cloned() })?;
    debug_assert_eq!(y.dims().last(), Some(&out));
    Ok(y)
}

struct FrozenMatmulOp {
    w: Tensor,
    packed: Option<Arc<PackedWeight>>,
}

impl CustomOp1 for FrozenMatmulOp {
    fn name(&self) -> &'static str {
        "tf-frozen-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, "frozen matmul input")?;
        let (out, inp) = self.w.dims2()?;
        let rows = x.len() / inp;
        let y = if let Some(p) = &self.packed {
            let mut y = vec![0f32; rows * out];
            p.forward(x, &mut y, false);
            y
        } else {
            with_data(&self.w, "frozen matmul weight", |w| Ok(gemm_new(rows, out, inp, View::rows(x, inp), View::rows(w, inp).t(), true)))?
        };
        let mut dims = l.dims().to_vec();
        *dims.last_mut().unwrap() = out;
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (out, inp) = self.w.dims2()?;
        let dx = with_data(grad, "frozen matmul grad", |g| {
            if let Some(p) = &self.packed {
                let mut dx = vec![0f32; g.len() / out * inp];
                p.backward(g, &mut dx, false);
                return Ok(dx);
            }
            with_data(&self.w, "frozen matmul weight", |w| {
                Ok(gemm_new(g.len() / out, inp, out, View::rows(g, out), View::rows(w, inp), true))
            })
        })?;
        Ok(Some(from_vec(dx, arg.dims())?))
    }
}
