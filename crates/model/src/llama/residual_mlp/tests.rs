use candle_core::Var;

use super::*;
use crate::llama::{
    test_support::{frozen_mlp, rand},
    train_ops::rms_norm,
};

type Run = (Vec<f32>, Vec<f32>, Vec<f32>);

/// `(out, dx, do)` of `Σ out·probe`, fused or composed from the add, RMSNorm and MLP ops.
fn run(m: &FrozenMlp, fused: bool) -> Run {
    let x = Var::from_tensor(&(rand(&[3, 7, 40], 4) * 2.0).unwrap()).unwrap();
    let o = Var::from_tensor(&rand(&[3, 7, 40], 5)).unwrap();
    let norm = (rand(&[40], 6) + 1.5).unwrap();
    let out = if fused {
        residual_mlp(&x, &o, &norm, 1e-5, m).unwrap()
    } else {
        let h = (x.as_tensor() + o.as_tensor()).unwrap();
        (&h + m.forward(&rms_norm(&h, &norm, 1e-5).unwrap()).unwrap()).unwrap()
    };
    let probe = rand(out.dims(), 7);
    let grads = (&out * &probe).unwrap().sum_all().unwrap().backward().unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    (flat(&out), flat(grads.get(x.as_tensor()).unwrap()), flat(grads.get(o.as_tensor()).unwrap()))
}

/// Training must not change by a bit: the loss sequence of a run is compared before and after.
#[test]
fn is_bit_identical_to_the_unfused_ops_in_value_and_gradients() {
    for bf16 in [false, true] {
        let m = frozen_mlp(bf16);
        let (fused, reference) = (run(&m, true), run(&m, false));
        assert_eq!(fused.0, reference.0, "bf16 {bf16}: outputs");
        assert_eq!(fused.1, reference.1, "bf16 {bf16}: x gradients");
        assert_eq!(fused.2, reference.2, "bf16 {bf16}: o gradients");
    }
}

#[test]
fn an_input_outside_the_graph_gets_no_gradient() {
    let m = frozen_mlp(false);
    let (x, o) = (rand(&[5, 40], 8), Var::from_tensor(&rand(&[5, 40], 9)).unwrap());
    let norm = rand(&[40], 10);
    let grads = residual_mlp(&x, &o, &norm, 1e-5, &m).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&x).is_none() && grads.get(o.as_tensor()).is_some());
}

#[test]
fn rejects_a_trainable_norm_and_mismatched_shapes() {
    let m = frozen_mlp(false);
    let (x, o) = (rand(&[5, 40], 8), rand(&[5, 40], 9));
    let trainable = Var::from_tensor(&rand(&[40], 10)).unwrap();
    assert!(residual_mlp(&x, &o, trainable.as_tensor(), 1e-5, &m).is_err());
    assert!(residual_mlp(&x, &rand(&[4, 40], 9), &rand(&[40], 10), 1e-5, &m).is_err());
}
