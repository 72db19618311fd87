//! A thin layer over `GraphBuilder` for writing big graphs by hand: every intermediate value
//! gets a fresh unique name, and small constants become initializers named by their content.
use std::collections::HashMap;

use crate::builder::GraphBuilder;
use crate::proto::AttributeProto;

pub struct Graph {
    pub b: GraphBuilder,
    next: usize,
    consts: HashMap<String, String>,
    /// Values derived once per input and shared by the matmuls reading it (e.g. the block sums
    /// of a normed activation that both `gate_proj` and `up_proj` take), keyed by kind + input.
    pub(crate) derived: HashMap<String, String>,
}

impl Graph {
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self { b: GraphBuilder::new(name), next: 0, consts: HashMap::new(), derived: HashMap::new() }
    }

    /// A value name not used before: `<hint>_<n>`.
    pub fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// Adds a single-output node and returns its output's fresh name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.b.node(op, inputs, &[&out], attrs);
        out
    }

    /// Adds a single-output node writing the named value `out`.
    pub fn op_to(&mut self, op: &str, inputs: &[&str], out: &str, attrs: Vec<AttributeProto>) {
        self.b.node(op, inputs, &[out], attrs);
    }

    /// An int64 constant (dims `[]` = scalar); equal constants share one initializer.
    pub fn const_i64(&mut self, dims: &[i64], values: &[i64]) -> String {
        let key = format!("i64{dims:?}{values:?}");
        if let Some(name) = self.consts.get(&key) {
            return name.clone();
        }
        let name = self.fresh("const_i64");
        self.b.initializer_i64(&name, dims, values);
        self.consts.insert(key, name.clone());
        name
    }

    /// A float32 constant (dims `[]` = scalar); equal constants share one initializer.
    pub fn const_f32(&mut self, dims: &[i64], values: &[f32]) -> String {
        let bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        let key = format!("f32{dims:?}{bits:?}");
        if let Some(name) = self.consts.get(&key) {
            return name.clone();
        }
        let name = self.fresh("const_f32");
        self.b.initializer_f32(&name, dims, values);
        self.consts.insert(key, name.clone());
        name
    }
}
