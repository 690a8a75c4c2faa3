//! Inference precision of the encoder's linear layers on the CPU, and the
//! CPU features, read at run time, that decide which kernels can run it.
//!
//! - `f32`: candle's matmul (the `gemm` crate, AVX-512 or AVX2 FMA).
//! - `bf16`: weights rounded to bfloat16 once at load, activations rounded
//!   per call, products accumulated in f32 by AVX512-BF16 (`vdpbf16ps`).
//! - `int8`: weights quantised symmetrically per output channel at load,
//!   activations quantised dynamically per token (row), accumulated in i32
//!   by AVX512-VNNI (`vpdpbusd`).
//!
//! Where the CPU has AMX and Linux grants this process tile data, bf16 and
//! int8 run on AMX tiles (`tdpbf16ps`, `tdpbusd`) with the same weights and
//! activation quantisation; `DG_AMX=off` keeps them on AVX-512.
//!
//! In every precision, LayerNorm, softmax, GELU, attention's batched
//! products, the pooling and the classifier head stay in f32.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Precision of the encoder's linear layers at inference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 weights and activations (the training precision).
    #[default]
    F32,
    /// bfloat16 products accumulated in f32 (AMX-BF16 or AVX512-BF16).
    Bf16,
    /// int8 products accumulated in i32 (AMX-INT8 or AVX512-VNNI).
    Int8,
}

impl Precision {
    /// Every precision, in the order `--help` lists them.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::Int8];

    /// `"f32"`, `"bf16"` or `"int8"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Precision::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown precision {s:?}: expected f32, bf16 or int8"))
    }
}

/// A requested precision: one precision, or `auto`, the fastest this CPU
/// runs among those that keep the accuracy contract on the default test
/// split (docs/precision.md): int8, else bf16, else f32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrecisionChoice {
    /// The fastest precision this CPU runs.
    #[default]
    Auto,
    /// This precision (an error where the CPU cannot run it).
    Fixed(Precision),
}

impl PrecisionChoice {
    /// The precision to run on a CPU with `cpu`'s features.
    pub fn resolve(self, cpu: &CpuFeatures) -> Precision {
        match self {
            PrecisionChoice::Fixed(p) => p,
            PrecisionChoice::Auto => [Precision::Int8, Precision::Bf16]
                .into_iter()
                .find(|&p| cpu.supports(p))
                .unwrap_or(Precision::F32),
        }
    }
}

impl PrecisionChoice {
    /// The precision to run on `device`: `auto` is f32 off the CPU, and
    /// this CPU's fastest on it.
    pub fn for_device(self, device: &candle_core::Device) -> Precision {
        match self {
            PrecisionChoice::Auto if !device.is_cpu() => Precision::F32,
            choice => choice.resolve(&CpuFeatures::detect()),
        }
    }
}

impl fmt::Display for PrecisionChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrecisionChoice::Auto => f.write_str("auto"),
            PrecisionChoice::Fixed(p) => p.fmt(f),
        }
    }
}

impl FromStr for PrecisionChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(PrecisionChoice::Auto);
        }
        s.parse()
            .map(PrecisionChoice::Fixed)
            .map_err(|_| format!("unknown precision {s:?}: expected auto, f32, bf16 or int8"))
    }
}

/// The reduced-precision features of this CPU, as the OS lets programs use
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CpuFeatures {
    /// AVX-512 foundation.
    pub avx512f: bool,
    /// AVX-512 byte and word instructions.
    pub avx512bw: bool,
    /// AVX-512 bfloat16 dot products (`vdpbf16ps`).
    pub avx512_bf16: bool,
    /// AVX-512 int8 dot products (`vpdpbusd`).
    pub avx512_vnni: bool,
    /// AMX tiles.
    pub amx_tile: bool,
    /// AMX bfloat16 tile products (`tdpbf16ps`).
    pub amx_bf16: bool,
    /// AMX int8 tile products (`tdpbusd`).
    pub amx_int8: bool,
    /// Why this process does not use the CPU's AMX tiles, if it has them
    /// and does not: Linux refused tile data, or [`AMX_ENV`] turned them
    /// off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amx_refused: Option<&'static str>,
}

/// The environment variable that keeps bf16 and int8 off AMX tiles (on
/// AVX-512) when set to `off`, `0` or `false`: to compare the kernels, or
/// where a platform mishandles tile state.
pub const AMX_ENV: &str = "DG_AMX";

/// Why this process may not use AMX tiles on a CPU that has them, if not.
fn amx_refusal() -> Option<&'static str> {
    let turned_off = std::env::var(AMX_ENV).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "false"
        )
    });
    if turned_off {
        return Some("turned off by DG_AMX");
    }
    if !tile_data_granted() {
        return Some("Linux refused AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM)");
    }
    None
}

/// Asks Linux, once per process, to let every thread use AMX tile data;
/// without it the first tile instruction raises SIGILL.
fn tile_data_granted() -> bool {
    static GRANTED: OnceLock<bool> = OnceLock::new();
    *GRANTED.get_or_init(request_tile_data)
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn request_tile_data() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: this arch_prctl only asks for a permission; it reads and
    // writes no memory of ours.
    let status = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    status == 0
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn request_tile_data() -> bool {
    false
}

impl CpuFeatures {
    /// Reads the features of the CPU this runs on.
    #[cfg(target_arch = "x86_64")]
    pub fn detect() -> Self {
        // CPUID leaf 7, sub-leaf 0, EDX: bit 22 AMX-BF16, 24 AMX-TILE,
        // 25 AMX-INT8 (the `amx-*` names of is_x86_feature_detected! are
        // unstable). `__cpuid_count` became a safe function in Rust 1.89.
        #[allow(unused_unsafe)]
        let leaf7 = unsafe { std::arch::x86_64::__cpuid_count(7, 0) };
        let bit = |b: u32| leaf7.edx & (1 << b) != 0;
        let amx_tile = bit(24);
        CpuFeatures {
            avx512f: is_x86_feature_detected!("avx512f"),
            avx512bw: is_x86_feature_detected!("avx512bw"),
            avx512_bf16: is_x86_feature_detected!("avx512bf16"),
            avx512_vnni: is_x86_feature_detected!("avx512vnni"),
            amx_tile,
            amx_bf16: bit(22),
            amx_int8: bit(25),
            amx_refused: if amx_tile { amx_refusal() } else { None },
        }
    }

    /// Reads the features of the CPU this runs on (none off x86-64).
    #[cfg(not(target_arch = "x86_64"))]
    pub fn detect() -> Self {
        CpuFeatures::default()
    }

    /// Whether this CPU has the kernels of `precision`.
    pub fn supports(&self, precision: Precision) -> bool {
        match precision {
            Precision::F32 => true,
            Precision::Bf16 => self.avx512f && self.avx512_bf16,
            Precision::Int8 => self.avx512f && self.avx512bw && self.avx512_vnni,
        }
    }

    /// Why `precision` does not run on AMX tiles here, if it does not.
    pub fn tiles_unavailable(&self, precision: Precision) -> Option<String> {
        let (product, name) = match precision {
            Precision::F32 => return Some("f32 has no AMX kernel".to_string()),
            Precision::Bf16 => (self.amx_bf16, "AMX-BF16"),
            Precision::Int8 => (self.amx_int8, "AMX-INT8"),
        };
        if !self.supports(precision) || !self.amx_tile || !product {
            return Some(format!("this CPU lacks AMX-TILE or {name}"));
        }
        self.amx_refused.map(str::to_string)
    }

    /// Whether `precision` runs on AMX tiles here.
    pub fn tiles(&self, precision: Precision) -> bool {
        self.tiles_unavailable(precision).is_none()
    }

    /// Whether inference in `precision` runs the attention's products in
    /// bf16 on AMX tiles: bf16 and int8 where AMX-BF16 runs (f32 stays f32).
    pub fn attention_tiles(&self, precision: Precision) -> bool {
        precision != Precision::F32 && self.tiles(precision) && self.tiles(Precision::Bf16)
    }

    /// The precisions this CPU can run, f32 first.
    pub fn supported(&self) -> Vec<Precision> {
        Precision::ALL
            .into_iter()
            .filter(|&p| self.supports(p))
            .collect()
    }

    /// The kernels `precision` runs on this CPU, in words, or an error that
    /// names the missing CPU feature.
    pub fn kernels(&self, precision: Precision) -> Result<String> {
        if !self.supports(precision) {
            let needs = match precision {
                Precision::F32 => unreachable!("f32 runs everywhere"),
                Precision::Bf16 => "AVX512-BF16",
                Precision::Int8 => "AVX512-VNNI and AVX512-BW",
            };
            return Err(ModelError::Precision(format!(
                "precision {precision} needs {needs}, which this CPU lacks \
                 (it supports: {}); choose another --precision",
                self.supported()
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let tiles = self.tiles(precision);
        let linear = match precision {
            Precision::F32 if self.avx512f => "f32 linear layers (gemm crate, AVX-512 FMA)",
            Precision::F32 => "f32 linear layers (gemm crate)",
            Precision::Bf16 if tiles => {
                "bf16 linear layers (AMX tdpbf16ps tiles, f32 accumulation)"
            }
            Precision::Bf16 => "bf16 linear layers (AVX512-BF16 vdpbf16ps, f32 accumulation)",
            Precision::Int8 if tiles => {
                "int8 linear layers (AMX tdpbusd tiles; weights per output channel, \
                 activations per token)"
            }
            Precision::Int8 => {
                "int8 linear layers (AVX512-VNNI vpdpbusd; weights per output channel, \
                 activations per token)"
            }
        };
        let amx = match self.tiles_unavailable(precision) {
            Some(why) if self.amx_tile => format!("; AMX present, not used: {why}"),
            _ => String::new(),
        };
        let rest = match self.attention_tiles(precision) {
            true => {
                "attention products bf16 on AMX tiles (tdpbf16ps); softmax, LayerNorm, \
                 GELU and head in f32"
            }
            false => "attention, LayerNorm, softmax, GELU and head in f32",
        };
        let fused = match precision {
            Precision::F32 => "",
            _ => {
                "; feed-forward block and attention block each one op (the attention block \
                 per batch item at 4+ items per thread)"
            }
        };
        Ok(format!("{linear}; {rest}{fused}{amx}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_names_round_trip_and_unknown_ones_are_refused() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>().unwrap(), p);
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
        assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
        let err = "fp16".parse::<Precision>().unwrap_err();
        assert!(err.contains("fp16") && err.contains("int8"), "{err}");
    }

    #[test]
    fn auto_picks_the_fastest_precision_the_cpu_runs() {
        let mut cpu = CpuFeatures::default();
        assert_eq!(PrecisionChoice::Auto.resolve(&cpu), Precision::F32);
        cpu.avx512f = true;
        cpu.avx512_bf16 = true;
        assert_eq!(PrecisionChoice::Auto.resolve(&cpu), Precision::Bf16);
        cpu.avx512bw = true;
        cpu.avx512_vnni = true;
        assert_eq!(PrecisionChoice::Auto.resolve(&cpu), Precision::Int8);
        let fixed: PrecisionChoice = "bf16".parse().unwrap();
        assert_eq!(fixed.resolve(&cpu), Precision::Bf16);
        assert_eq!(
            "AUTO".parse::<PrecisionChoice>().unwrap(),
            PrecisionChoice::Auto
        );
        assert_eq!(PrecisionChoice::Auto.to_string(), "auto");
        assert!("fp8"
            .parse::<PrecisionChoice>()
            .unwrap_err()
            .contains("auto"));
    }

    #[test]
    fn a_missing_feature_is_named_in_the_error() {
        let none = CpuFeatures::default();
        assert!(none.kernels(Precision::F32).is_ok());
        let err = none.kernels(Precision::Bf16).unwrap_err().to_string();
        assert!(err.contains("AVX512-BF16"), "{err}");
        let err = none.kernels(Precision::Int8).unwrap_err().to_string();
        assert!(err.contains("AVX512-VNNI"), "{err}");
        assert_eq!(none.supported(), vec![Precision::F32]);
    }

    #[test]
    fn amx_runs_where_granted_and_says_why_where_not() {
        let mut amx = CpuFeatures {
            avx512f: true,
            avx512bw: true,
            avx512_bf16: true,
            avx512_vnni: true,
            amx_tile: true,
            amx_bf16: true,
            amx_int8: true,
            amx_refused: None,
        };
        assert!(amx.tiles(Precision::Bf16) && amx.tiles(Precision::Int8));
        assert!(amx
            .kernels(Precision::Bf16)
            .unwrap()
            .contains("AMX tdpbf16ps"));
        assert!(amx
            .kernels(Precision::Int8)
            .unwrap()
            .contains("AMX tdpbusd"));
        let f32_words = amx.kernels(Precision::F32).unwrap();
        assert!(
            f32_words.contains("not used: f32 has no AMX kernel"),
            "{f32_words}"
        );
        amx.amx_refused = Some("turned off by DG_AMX");
        assert!(!amx.tiles(Precision::Bf16));
        let words = amx.kernels(Precision::Bf16).unwrap();
        assert!(
            words.contains("vdpbf16ps") && words.contains("turned off by DG_AMX"),
            "{words}"
        );
        amx.amx_refused = None;
        amx.amx_int8 = false;
        assert!(amx.tiles(Precision::Bf16));
        let why = amx.tiles_unavailable(Precision::Int8).unwrap();
        assert!(why.contains("AMX-INT8"), "{why}");
        assert!(!CpuFeatures::default().tiles(Precision::Bf16));
    }
}
