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
            Ok(Device::new_cuda(ordinal)?)
        }
        _ => Err(error("unknown device: expected cpu, cuda or cuda:N")),
    }
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
}
