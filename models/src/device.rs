//! `--device cpu | cuda[:N]`, shared by every binary that runs a model.

use candle_core::Device;

use crate::error::{ModelError, Result};

/// Parses a device name: `cpu`, `cuda` or `cuda:N` (CUDA needs the `cuda`
/// cargo feature).
pub fn parse_device(name: &str) -> Result<Device> {
    let error = |message: &str| ModelError::Device {
        name: name.to_string(),
        message: message.to_string(),
    };
    match name {
        "cpu" => Ok(Device::Cpu),
        _ if name == "cuda" || name.starts_with("cuda:") => {
            let ordinal = match name.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<usize>()
                    .map_err(|_| error("expected cuda:N with N a GPU ordinal"))?,
                None => 0,
            };
            if !candle_core::utils::cuda_is_available() {
                return Err(error(
                    "this binary was built without CUDA (rebuild with --features cuda)",
                ));
            }
            #[cfg(feature = "cuda")]
            if let Some(library) = missing_cuda_library() {
                return Err(error(&format!(
                    "{library} was not found: no NVIDIA driver here, or LD_LIBRARY_PATH \
                     lacks the folder that holds it"
                )));
            }
            Ok(Device::new_cuda(ordinal)?)
        }
        _ => Err(error("unknown device: expected cpu, cuda or cuda:N")),
    }
}

/// The first CUDA library that a CUDA device needs and this machine lacks.
/// cudarc opens them when the GPU is first used and panics where one is
/// missing (vendor/candle-core/PATCHED.md), so they are looked for first.
#[cfg(feature = "cuda")]
fn missing_cuda_library() -> Option<&'static str> {
    use candle_core::cuda::cudarc;
    /// A library's name, and whether cudarc can open it.
    type Library = (&'static str, unsafe fn() -> bool);
    let libraries: [Library; 4] = [
        (
            "the driver's libcuda.so.1",
            cudarc::driver::sys::is_culib_present,
        ),
        (
            "cuBLAS (libcublas.so)",
            cudarc::cublas::sys::is_culib_present,
        ),
        (
            "cuBLASLt (libcublasLt.so)",
            cudarc::cublaslt::sys::is_culib_present,
        ),
        (
            "cuRAND (libcurand.so)",
            cudarc::curand::sys::is_culib_present,
        ),
    ];
    libraries
        .into_iter()
        // SAFETY: each opens its library with dlopen, which runs only the
        // library's own initialisers, and closes it again.
        .find(|(_, present)| !unsafe { present() })
        .map(|(library, _)| library)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        assert!(parse_device("gpu").is_err());
        assert!(parse_device("cuda:x").is_err());
        #[cfg(not(feature = "cuda"))]
        assert!(parse_device("cuda")
            .unwrap_err()
            .to_string()
            .contains("without CUDA"));
    }

    /// Where a CUDA library is missing, asking for the GPU is an error
    /// that names it, not cudarc's panic.
    #[cfg(feature = "cuda")]
    #[test]
    fn a_missing_cuda_library_is_an_error() {
        let Some(library) = missing_cuda_library() else {
            eprintln!("SKIPPED: every CUDA library is present on this machine");
            return;
        };
        let message = parse_device("cuda:0").unwrap_err().to_string();
        assert!(message.contains(library), "{message}");
    }
}
