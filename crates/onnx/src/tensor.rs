//! Constructors and readers for constant tensors and attributes.
//!
//! Tensors are always written as little-endian `raw_data`: one memcpy-like pass, and the form ONNX
//! Runtime maps without converting. Readers also accept the typed `*_data` fields other writers use.
use crate::proto::{AttributeProto, AttributeType, DataType, TensorProto};

impl DataType {
    /// Bytes per element in `raw_data`, or `None` for variable-size types (string).
    #[must_use]
    pub fn byte_size(self) -> Option<usize> {
        Some(match self {
            Self::Float | Self::Int32 | Self::Uint32 => 4,
            Self::Uint8 | Self::Int8 | Self::Bool => 1,
            Self::Uint16 | Self::Int16 | Self::Float16 | Self::Bfloat16 => 2,
            Self::Int64 | Self::Uint64 | Self::Double | Self::Complex64 => 8,
            Self::Complex128 => 16,
            Self::String | Self::Undefined => return None,
        })
    }

    /// The element-type names ONNX Runtime's JS API uses (`float32`, `int64`, ...).
    #[must_use]
    pub fn js_name(self) -> &'static str {
        match self {
            Self::Undefined => "undefined",
            Self::Float => "float32",
            Self::Uint8 => "uint8",
            Self::Int8 => "int8",
            Self::Uint16 => "uint16",
            Self::Int16 => "int16",
            Self::Int32 => "int32",
            Self::Int64 => "int64",
            Self::String => "string",
            Self::Bool => "bool",
            Self::Float16 => "float16",
            Self::Double => "float64",
            Self::Uint32 => "uint32",
            Self::Uint64 => "uint64",
            Self::Complex64 => "complex64",
            Self::Complex128 => "complex128",
            Self::Bfloat16 => "bfloat16",
        }
    }

    /// Inverse of [`DataType::js_name`].
    #[must_use]
    pub fn from_js_name(name: &str) -> Option<Self> {
        ALL_TYPES.iter().copied().find(|t| t.js_name() == name && *t != Self::Undefined)
    }
}

const ALL_TYPES: [DataType; 17] = [
    DataType::Undefined,
    DataType::Float,
    DataType::Uint8,
    DataType::Int8,
    DataType::Uint16,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::String,
    DataType::Bool,
    DataType::Float16,
    DataType::Double,
    DataType::Uint32,
    DataType::Uint64,
    DataType::Complex64,
    DataType::Complex128,
    DataType::Bfloat16,
];

/// A tensor from already little-endian bytes (e.g. packed int4 weights, f16 bits).
#[must_use]
pub fn tensor_raw(name: &str, data_type: DataType, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto { name: name.to_string(), dims: dims.to_vec(), data_type: data_type as i32, raw_data: raw, ..Default::default() }
}

macro_rules! tensor_ctor {
    ($fn:ident, $t:ty, $dt:expr) => {
        #[doc = concat!("A `", stringify!($t), "` tensor, copied into little-endian `raw_data`.")]
        #[must_use]
        pub fn $fn(name: &str, dims: &[i64], data: &[$t]) -> TensorProto {
            let mut raw = Vec::with_capacity(std::mem::size_of_val(data));
            for v in data {
                raw.extend_from_slice(&v.to_le_bytes());
            }
            tensor_raw(name, $dt, dims, raw)
        }
    };
}
tensor_ctor!(tensor_f32, f32, DataType::Float);
tensor_ctor!(tensor_i64, i64, DataType::Int64);
tensor_ctor!(tensor_i32, i32, DataType::Int32);
tensor_ctor!(tensor_i8, i8, DataType::Int8);
tensor_ctor!(tensor_u8, u8, DataType::Uint8);

impl TensorProto {
    /// Number of elements the dims describe (1 for a scalar).
    #[must_use]
    pub fn num_elements(&self) -> usize {
        self.dims.iter().map(|&d| usize::try_from(d).unwrap_or(0)).product()
    }

    /// The element type, if `data_type` is a known `DataType`.
    #[must_use]
    pub fn elem_type(&self) -> Option<DataType> {
        DataType::try_from(self.data_type).ok()
    }

    /// The values as f32, if this is a float tensor (raw or `float_data`).
    #[must_use]
    pub fn to_f32_vec(&self) -> Option<Vec<f32>> {
        if self.elem_type()? != DataType::Float {
            return None;
        }
        if self.raw_data.is_empty() {
            return Some(self.float_data.clone());
        }
        Some(self.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// The values as i64, if this is an int64 tensor (raw or `int64_data`).
    #[must_use]
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        if self.elem_type()? != DataType::Int64 {
            return None;
        }
        if self.raw_data.is_empty() {
            return Some(self.int64_data.clone());
        }
        Some(self.raw_data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
    }
}

/// Attribute constructors: `Attr::int("axis", 0)`, `Attr::floats("scales", &[..])`, ...
pub struct Attr;

impl Attr {
    fn base(name: &str, ty: AttributeType) -> AttributeProto {
        AttributeProto { name: name.to_string(), r#type: ty as i32, ..Default::default() }
    }
    #[must_use]
    pub fn float(name: &str, f: f32) -> AttributeProto {
        AttributeProto { f, ..Self::base(name, AttributeType::Float) }
    }
    #[must_use]
    pub fn int(name: &str, i: i64) -> AttributeProto {
        AttributeProto { i, ..Self::base(name, AttributeType::Int) }
    }
    #[must_use]
    pub fn string(name: &str, s: &str) -> AttributeProto {
        AttributeProto { s: s.as_bytes().to_vec(), ..Self::base(name, AttributeType::String) }
    }
    #[must_use]
    pub fn tensor(name: &str, t: TensorProto) -> AttributeProto {
        AttributeProto { t: Some(t), ..Self::base(name, AttributeType::Tensor) }
    }
    #[must_use]
    pub fn floats(name: &str, floats: &[f32]) -> AttributeProto {
        AttributeProto { floats: floats.to_vec(), ..Self::base(name, AttributeType::Floats) }
    }
    #[must_use]
    pub fn ints(name: &str, ints: &[i64]) -> AttributeProto {
        AttributeProto { ints: ints.to_vec(), ..Self::base(name, AttributeType::Ints) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_data_is_little_endian_and_reads_back() {
        let t = tensor_f32("w", &[2], &[1.0, -2.5]);
        assert_eq!(t.raw_data, [1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat());
        assert_eq!(t.to_f32_vec().unwrap(), vec![1.0, -2.5]);
        assert_eq!(tensor_i64("i", &[1], &[-7]).to_i64_vec().unwrap(), vec![-7]);
        assert!(t.to_i64_vec().is_none());
    }

    #[test]
    fn js_names_round_trip() {
        for t in ALL_TYPES.iter().skip(1) {
            assert_eq!(DataType::from_js_name(t.js_name()), Some(*t));
        }
        assert_eq!(DataType::from_js_name("undefined"), None);
    }
}
